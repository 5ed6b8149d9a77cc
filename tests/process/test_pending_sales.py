"""Sales reported before `shoplink count` stored their click, as deployed: real clicks through
/r/{code}, the shop's report right after the 302, the count worker as its own process — running,
killed and restarted later, or never seeing the click.

The durations are settings, scaled down so that the tests take seconds and keep their order:
the worker's downtime (DOWNTIME_S, "two minutes" in the issue) is longer than the time after
which a dead consumer's entries are reclaimed (SHOPLINK_ATTRIBUTION_RECLAIM_IDLE_S, 60 s by
default) and than the sweep period (SHOPLINK_ATTRIBUTION_SWEEP_S), and shorter than the bound
a sale waits for its click (SHOPLINK_ATTRIBUTION_PENDING_S, a week by default)."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import asyncpg
import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from shoplink.config import Settings

from support.affiliate_data import create_plan, insert_anchor, seller_with_products
from support.api import AccountFactory, Api
from support.count import start_count_worker, stop_count_worker
from support.services import free_port
from support.wait import until

RECLAIM_IDLE_S = 1
SWEEP_S = 0.2
DOWNTIME_S = 3 * RECLAIM_IDLE_S  # stands for "two minutes": well past the reclaim idle time
PENDING_S = 120  # the bound: far longer than the downtime


async def _worker(settings: Settings) -> asyncio.subprocess.Process:
    return await start_count_worker(settings, attribution_reclaim_idle_s=RECLAIM_IDLE_S,
                                    attribution_sweep_s=SWEEP_S)


@pytest.fixture
async def server(start_server: Any) -> TestServer:
    """The app with a short pending bound (the web instance stamps it on the sale)."""
    started: TestServer = await start_server(attribution_pending_s=PENDING_S)
    return started


async def _shop(make_account: AccountFactory, pool: asyncpg.Pool) -> tuple[Api, int, str]:
    seller, shop_id, products = await seller_with_products(make_account, prices=["20.00"])
    plan = await create_plan(seller, products, rate="10.00")
    creator = await make_account("creator")
    assert (await creator.post(f"/api/v1/plans/{plan['id']}/join")).status == 201
    _, code = await insert_anchor(pool, creator_id=creator.account_id or 0, product_id=products[0],
                                  plan_id=plan["id"])
    return seller, shop_id, code


async def _click(anon: Api, code: str) -> str:
    reply = await anon.get(f"/r/{code}")
    assert reply.status == 302, reply.body
    click_id: str = reply.headers["Location"].rsplit("sl_click=", 1)[1].split("&")[0].split("#")[0]
    return click_id


async def _report(seller: Api, shop_id: int, order_id: str, click_id: str) -> dict[str, Any]:
    reply = await seller.post("/api/v1/conversions", {
        "shop_id": shop_id, "order_id": order_id, "amount": "20.00", "currency": "USD",
        "click_id": click_id})
    assert reply.status == 201, reply.body
    body: dict[str, Any] = reply.body
    return body


async def _reasons(pool: asyncpg.Pool, ids: list[int]) -> list[str]:
    async with pool.acquire() as con:
        rows = await con.fetch("SELECT reason FROM conversions WHERE id = ANY($1::bigint[]) "
                               "ORDER BY id", ids)
    return [r["reason"] for r in rows]


async def test_a_sale_reported_right_after_the_redirect_is_credited(
        settings: Settings, make_account: AccountFactory, anon: Api, pool: asyncpg.Pool) -> None:
    seller, shop_id, code = await _shop(make_account, pool)
    worker = await _worker(settings)
    try:
        sales = []
        for n in range(20):  # 0 ms after each 302: the click is usually still in the stream
            sales.append(await _report(seller, shop_id, f"RACE-{n}", await _click(anon, code)))
        ids = [s["id"] for s in sales]

        async def all_credited() -> bool:
            return await _reasons(pool, ids) == ["last_click"] * len(ids)

        await until(all_credited, timeout=30, interval=0.05)
    finally:
        exit_code, err = await stop_count_worker(worker)
    assert exit_code == 0, err
    async with pool.acquire() as con:
        owed = await con.fetchval("SELECT sum(commission_minor) FROM conversions "
                                  "WHERE id = ANY($1::bigint[])", ids)
    assert owed == 20 * 200


async def test_sales_during_a_count_worker_outage_are_credited_after_its_restart(
        settings: Settings, make_account: AccountFactory, anon: Api, pool: asyncpg.Pool) -> None:
    seller, shop_id, code = await _shop(make_account, pool)
    worker = await _worker(settings)
    before = await _report(seller, shop_id, "UP-1", await _click(anon, code))
    await until(lambda: _is(pool, [before["id"]], "last_click"), timeout=30, interval=0.05)
    worker.send_signal(signal.SIGKILL)  # a crash: no clean shutdown, entries may stay pending
    await stop_count_worker(worker)

    down = [await _report(seller, shop_id, f"DOWN-{n}", await _click(anon, code))
            for n in range(10)]
    assert {s["attribution"] for s in down} == {"pending"}
    await asyncio.sleep(DOWNTIME_S)  # the outage (a clock: nothing can end it early)
    assert await _is(pool, [s["id"] for s in down], "pending_attribution")

    worker = await _worker(settings)
    try:
        await until(lambda: _is(pool, [s["id"] for s in down], "last_click"), timeout=30,
                    interval=0.05)
    finally:
        exit_code, err = await stop_count_worker(worker)
    assert exit_code == 0, err


async def _is(pool: asyncpg.Pool, ids: list[int], reason: str) -> bool:
    return await _reasons(pool, ids) == [reason] * len(ids)


@pytest.fixture
async def short_bound_server(start_server: Any) -> TestServer:
    started: TestServer = await start_server(attribution_pending_s=1)
    return started


async def test_a_sale_whose_click_never_comes_is_unattributed_after_the_bound(
        settings: Settings, make_account: AccountFactory, short_bound_server: TestServer,
        pool: asyncpg.Pool) -> None:
    seller, shop_id, _ = await _shop(make_account, pool)
    seller = Api.of(seller, str(short_bound_server.make_url("")))
    sale = await _report(seller, shop_id, "NEVER-1", "01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert (sale["attribution"], sale["reason"]) == ("pending", "pending_attribution")
    port = free_port()
    worker = await start_count_worker(settings, attribution_reclaim_idle_s=RECLAIM_IDLE_S,
                                      attribution_sweep_s=SWEEP_S, count_metrics_port=port)
    try:
        await until(lambda: _is(pool, [sale["id"]], "click_unknown"), timeout=30, interval=0.05)
        async with ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as resp:
            metrics = await resp.text()
        assert 'shoplink_attribution_pending_sales_total{result="expired"} 1' in metrics
    finally:
        exit_code, err = await stop_count_worker(worker)
    assert exit_code == 0, err
    reply = await seller.get(f"/api/v1/conversions/{sale['id']}")
    assert (reply.body["attribution"], reply.body["pending_until"]) == ("unattributed", None)
