"""`shoplink reconcile` as a process: 0 when the money adds up, 1 naming what does not — a
commission off by one minor unit, refunds that do not match their sale, a payout that does not
match the sales it paid — and the pending sales nobody swept."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from shoplink.config import Settings

from support.affiliate_data import (
    click_event,
    create_plan,
    insert_anchor,
    ms,
    new_viewer,
    seller_with_products,
    xadd_click,
)
from support.api import AccountFactory
from support.count import run_count, run_shoplink


@pytest.fixture
async def server(start_server: Any) -> TestServer:
    started: TestServer = await start_server(return_window_days=0)  # payable at once
    return started


async def _reconcile(settings: Settings) -> tuple[int, dict[str, Any]]:
    code, out, err = await run_shoplink(settings, "reconcile")
    assert code in (0, 1), err
    result: dict[str, Any] = orjson.loads(out)
    return code, result


async def test_reconcile_passes_on_good_money_and_names_every_difference(
        settings: Settings, make_account: AccountFactory, pool: asyncpg.Pool,
        redis: Redis) -> None:
    seller, shop_id, products = await seller_with_products(make_account, prices=["10.00"])
    plan = await create_plan(seller, products, rate="12.50")
    creator = await make_account("creator")
    assert (await creator.post(f"/api/v1/plans/{plan['id']}/join")).status == 201
    anchor_id, code = await insert_anchor(pool, creator_id=creator.account_id,
                                          product_id=products[0], plan_id=plan["id"])
    clicks = []
    for _ in range(3):
        event = click_event(anchor_id=anchor_id, code=code, product_id=products[0],
                            shop_id=shop_id, creator_id=creator.account_id, plan_id=plan["id"],
                            rate_bp=1250, viewer=new_viewer(), ts_ms=ms(datetime.now(UTC) - timedelta(hours=1)))
        await xadd_click(redis, event)
        clicks.append(event["event_id"])
    exit_code, _, err = await run_count(settings, "--exit-when-idle")
    assert exit_code == 0, err
    ids = []
    for n, click_id in enumerate(clicks):
        reply = await seller.post("/api/v1/conversions", {
            "shop_id": shop_id, "order_id": f"K-{n}", "amount": "33.33", "currency": "EUR",
            "click_id": click_id})
        assert reply.body["attribution"] == "attributed", reply.body
        ids.append(reply.body["id"])
    assert (await seller.post(f"/api/v1/conversions/{ids[0]}/refund", {"amount": "3.33"})).status == 200
    payout = await seller.post("/api/v1/payouts", {"creator_id": creator.account_id,
                                                   "currency": "EUR", "reference": "R-1"})
    assert payout.status == 201, payout.body

    code_, result = await _reconcile(settings)
    assert (code_, result["ok"], result["problems"]) == (0, True, [])
    assert (result["conversions"], result["attributed"]) == (3, 3)
    assert result["commission_owed"] == {"EUR": "12.09"}  # 3.75 (on 30.00) + 2 x 4.17 (4.16625)

    async def detected(breaking: str, restoring: str, expect: str) -> None:
        """Break one thing, see it named (exit 1), restore it, see everything add up again."""
        async with pool.acquire() as con:
            await con.execute(breaking)
        exit_code_, found = await _reconcile(settings)
        assert exit_code_ == 1 and not found["ok"], found
        assert any(expect in p for p in found["problems"]), found["problems"]
        async with pool.acquire() as con:
            await con.execute(restoring)
        assert (await _reconcile(settings))[0] == 0

    one = f"WHERE id = {ids[1]}"
    await detected(  # a commission off by one minor unit (the owed amount kept consistent)
        f"UPDATE conversions SET commission_minor = commission_minor + 1, "
        f"commission_refunded_minor = commission_refunded_minor + 1 {one}",
        f"UPDATE conversions SET commission_minor = commission_minor - 1, "
        f"commission_refunded_minor = commission_refunded_minor - 1 {one}",
        f"conversion {ids[1]}: commission")
    await detected("UPDATE conversion_refunds SET amount_minor = amount_minor - 1",
                   "UPDATE conversion_refunds SET amount_minor = amount_minor + 1",
                   f"conversion {ids[0]}: refunded_minor")
    await detected("UPDATE payouts SET amount_minor = amount_minor + 1",
                   "UPDATE payouts SET amount_minor = amount_minor - 1",
                   f"payout {payout.body['id']}")

    # a sale waiting past its bound: nobody swept (no count worker): reported, not an error
    waiting = await seller.post("/api/v1/conversions", {
        "shop_id": shop_id, "order_id": "K-lost", "amount": "1.00", "currency": "EUR",
        "click_id": click_event(anchor_id=None, product_id=None, shop_id=None, creator_id=None,
                                plan_id=None, ts_ms=0)["event_id"]})
    assert waiting.body["attribution"] == "pending"
    async with pool.acquire() as con:
        await con.execute("UPDATE conversions SET pending_until = now() - interval '1 second' "
                          "WHERE id = $1", waiting.body["id"])
    code_, result = await _reconcile(settings)
    assert (code_, result["pending"], result["overdue_pending"]) == (0, 1, 1)
