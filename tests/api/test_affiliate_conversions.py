"""Conversions over the real HTTP API: clicks go through the streams and the running attribution
consumer; sales are credited to the last qualifying click in the window; idempotent; refunds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from shoplink.keys import AFFILIATES
from shoplink.money import percentage_of

from support.affiliate_data import (
    T0,
    Clock,
    click_event,
    create_plan,
    insert_anchor,
    ms,
    new_viewer,
    seller_with_products,
    wait_for_clicks,
    xadd_click,
)
from support.api import AccountFactory, Api

DAY = timedelta(days=1)


async def _click(redis: Redis, *, anchor: tuple[int, str], creator: Api, product_id: int,
                 shop_id: int, plan_id: int | None, rate_bp: int | None, at: Any,
                 viewer: str, **kw: Any) -> str:
    event = click_event(anchor_id=anchor[0], code=anchor[1], product_id=product_id,
                        shop_id=shop_id, creator_id=creator.account_id, plan_id=plan_id,
                        rate_bp=rate_bp, ts_ms=ms(at), viewer=viewer, **kw)
    await xadd_click(redis, event)
    event_id: str = event["event_id"]
    return event_id


async def _setup(server: TestServer, make_account: AccountFactory, pool: asyncpg.Pool, *,
                 currency: str = "USD", price: str = "100.00",
                 rate: str = "10.00", domain: str = "shop.example") -> dict[str, Any]:
    server.app[AFFILIATES].now = Clock()
    seller, shop_id, products = await seller_with_products(make_account, prices=[price],
                                                           currency=currency, domain=domain)
    plan = await create_plan(seller, products, rate=rate)
    creators = [await make_account("creator") for _ in range(2)]
    anchors = []
    for creator in creators:
        assert (await creator.post(f"/api/v1/plans/{plan['id']}/join")).status == 201
        anchors.append(await insert_anchor(pool, creator_id=creator.account_id or 0,
                                           product_id=products[0], plan_id=plan["id"]))
    return {"seller": seller, "shop_id": shop_id, "product_id": products[0], "plan": plan,
            "creators": creators, "anchors": anchors}


@pytest.mark.usefixtures("count_worker")  # attributes the plan clicks, as deployed
async def test_last_click_wins_within_the_window(server: TestServer, make_account: AccountFactory,
                                                 pool: asyncpg.Pool, redis: Redis) -> None:
    s = await _setup(server, make_account, pool)
    alice, bob = s["creators"]
    common = {"product_id": s["product_id"], "shop_id": s["shop_id"], "plan_id": s["plan"]["id"]}
    viewer, stale_viewer = new_viewer(), new_viewer()
    ids = [
        await _click(redis, anchor=s["anchors"][0], creator=alice, rate_bp=1000, at=T0 - 2 * DAY,
                     viewer=viewer, **common),
        await _click(redis, anchor=s["anchors"][1], creator=bob, rate_bp=1500, at=T0 - DAY,
                     viewer=viewer, **common),
        # later, but not qualifying: a bot, and a click that carried no commission
        await _click(redis, anchor=s["anchors"][0], creator=alice, rate_bp=1000,
                     at=T0 - DAY / 2, viewer=viewer, ua_class="bot", **common),
        await _click(redis, anchor=s["anchors"][0], creator=alice, rate_bp=None,
                     source="plan_paused", at=T0 - DAY / 4, viewer=viewer, **common),
        # outside the 7-day window
        await _click(redis, anchor=s["anchors"][0], creator=alice, rate_bp=1000,
                     at=T0 - 8 * DAY, viewer=stale_viewer, **common),
    ]
    await wait_for_clicks(pool, ids)
    seller: Api = s["seller"]

    # by viewer hash
    sale = {"shop_id": s["shop_id"], "order_id": "A-1", "amount": "59.99", "currency": "USD",
            "viewer": viewer}
    reply = await seller.post("/api/v1/conversions", sale)
    assert reply.status == 201, reply.body
    conv = reply.body
    assert conv["attributed"] and conv["reason"] == "last_click"
    assert (conv["click_id"], conv["creator_id"], conv["plan_id"]) == (
        ids[1], bob.account_id, s["plan"]["id"])
    assert conv["commission"] == {"rate_bp": 1500, "rate": "15.00", "source": "plan_rate"}
    assert conv["amount_minor"] == 5999
    assert conv["commission_minor"] == 900 and conv["commission_amount"] == "9.00"  # 899.85

    # by click id: the click's viewer is looked up; the last click of that viewer still wins
    reply = await seller.post("/api/v1/conversions", {
        "shop_id": s["shop_id"], "order_id": "A-2", "amount": "10.00", "currency": "USD",
        "click_id": ids[0]})
    assert reply.status == 201 and reply.body["click_id"] == ids[1]

    # the only click is outside the window: recorded, not attributed
    reply = await seller.post("/api/v1/conversions", {**sale, "order_id": "A-3",
                                                      "viewer": stale_viewer})
    assert reply.status == 201
    assert (reply.body["attributed"], reply.body["reason"], reply.body["commission_minor"]) == (
        False, "no_qualifying_click", 0)
    # a sale reported a week after the click by the same viewer is outside it too
    reply = await seller.post("/api/v1/conversions", {
        **sale, "order_id": "A-4", "occurred_at": (T0 - DAY - 7 * DAY).isoformat()})
    assert reply.body["reason"] == "no_qualifying_click"
    # a click id nobody knows
    reply = await seller.post("/api/v1/conversions", {
        "shop_id": s["shop_id"], "order_id": "A-5", "amount": "1.00", "currency": "USD",
        "click_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"})
    assert (reply.body["reason"], reply.body["attribution"]) == ("pending_attribution", "pending")


@pytest.mark.usefixtures("count_worker")  # attributes the plan clicks, as deployed
async def test_same_order_twice_and_refund(server: TestServer, make_account: AccountFactory,
                                           pool: asyncpg.Pool, redis: Redis) -> None:
    s = await _setup(server, make_account, pool)
    alice = s["creators"][0]
    viewer = new_viewer()
    click_id = await _click(redis, anchor=s["anchors"][0], creator=alice,
                            product_id=s["product_id"], shop_id=s["shop_id"],
                            plan_id=s["plan"]["id"], rate_bp=1000, at=T0 - DAY, viewer=viewer)
    await wait_for_clicks(pool, [click_id])
    seller: Api = s["seller"]
    sale = {"shop_id": s["shop_id"], "order_id": "B-1", "amount": "20.00", "currency": "USD",
            "click_id": click_id}
    first = await seller.post("/api/v1/conversions", sale)
    again = await seller.post("/api/v1/conversions", sale)
    assert (first.status, again.status) == (201, 200)
    assert again.body == first.body
    conflict = await seller.post("/api/v1/conversions", {**sale, "amount": "21.00"})
    assert conflict.status == 409 and conflict.body["error"]["code"] == "order_conflict"
    async with pool.acquire() as con:
        assert await con.fetchval("SELECT count(*) FROM conversions") == 1

    cid = first.body["id"]
    refund = await seller.post(f"/api/v1/conversions/{cid}/refund")
    assert refund.status == 200
    assert (refund.body["status"], refund.body["commission_owed_minor"]) == ("refunded", 0)
    assert (await seller.post(f"/api/v1/conversions/{cid}/refund")).status == 409
    assert (await seller.get(f"/api/v1/conversions/{cid}")).body["status"] == "refunded"
    # reporting the refunded order again does not revive it
    assert (await seller.post("/api/v1/conversions", sale)).body["status"] == "refunded"

    # not yours: 404; wrong role: 403
    other, _, _ = await seller_with_products(make_account, prices=["1.00"],
                                             domain="other.example")
    assert (await other.post("/api/v1/conversions", sale)).status == 404
    assert (await other.post(f"/api/v1/conversions/{cid}/refund")).status == 404
    assert (await other.get(f"/api/v1/conversions/{cid}")).status == 404
    assert (await alice.post("/api/v1/conversions", sale)).status == 403


async def test_conversion_validation(server: TestServer, make_account: AccountFactory,
                                     pool: asyncpg.Pool) -> None:
    s = await _setup(server, make_account, pool)
    seller: Api = s["seller"]
    base = {"shop_id": s["shop_id"], "order_id": "C-1", "amount": "10.00", "currency": "USD",
            "viewer": new_viewer()}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"amount": "10.001"}, "amount"),
        ({"amount": "10.5", "currency": "JPY"}, "amount"),
        ({"amount": 10}, "amount"),
        ({"currency": "XXX"}, "currency"),
        ({"viewer": "not-a-hash"}, "viewer"),
        ({"click_id": "nope"}, "click_id"),
        ({"order_id": "  "}, "order_id"),
        ({"occurred_at": "2031-01-01T00:00:00Z"}, "occurred_at"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
    ]
    for change, field in cases:
        reply = await seller.post("/api/v1/conversions", {**base, **change})
        assert reply.status == 422, (change, reply.body)
        assert reply.body["error"]["details"][0]["field"] == field, (change, reply.body)
    no_id = {k: v for k, v in base.items() if k != "viewer"}
    reply = await seller.post("/api/v1/conversions", no_id)
    assert reply.status == 422 and reply.body["error"]["details"][0]["field"] == "click_id"
    async with pool.acquire() as con:
        assert await con.fetchval("SELECT count(*) FROM conversions") == 0


def test_commission_rounding_in_minor_units() -> None:
    # half-even on the exact product; JPY has no minor unit, KWD has three
    assert percentage_of(5999, 1500) == 900  # USD 59.99 at 15 % = 8.9985 -> 9.00
    assert percentage_of(4, 1250) == 0  # 0.5 cent -> 0 (even)
    assert percentage_of(12, 1250) == 2  # 1.5 cents -> 2 (even)
    assert percentage_of(1005, 1000) == 100  # JPY 100.5 -> 100
    assert percentage_of(1015, 1000) == 102  # JPY 101.5 -> 102
    assert percentage_of(1234, 1000) == 123  # KWD 1.234 at 10 % = 0.1234 -> 0.123


@pytest.mark.usefixtures("count_worker")  # attributes the plan clicks, as deployed
async def test_commission_in_each_currency_over_http(server: TestServer, make_account: AccountFactory,
                                                     pool: asyncpg.Pool, redis: Redis) -> None:
    cases = [("JPY", "1005", "10.00", 100, "100"), ("JPY", "1015", "10.00", 102, "102"),
             ("USD", "0.12", "12.50", 2, "0.02"), ("EUR", "0.04", "12.50", 0, "0.00"),
             ("KWD", "1.234", "10.00", 123, "0.123")]
    for n, (currency, amount, rate, minor, shown) in enumerate(cases):
        s = await _setup(server, make_account, pool, currency=currency, rate=rate,
                         domain=f"shop{n}.example")  # one shop per domain
        viewer = new_viewer()
        rate_bp = s["plan"]["rate_bp"]
        click_id = await _click(redis, anchor=s["anchors"][0], creator=s["creators"][0],
                                product_id=s["product_id"], shop_id=s["shop_id"],
                                plan_id=s["plan"]["id"], rate_bp=rate_bp, at=T0 - DAY,
                                viewer=viewer)
        await wait_for_clicks(pool, [click_id])
        reply = await s["seller"].post("/api/v1/conversions", {
            "shop_id": s["shop_id"], "order_id": f"R-{n}", "amount": amount,
            "currency": currency, "click_id": click_id})
        assert reply.status == 201, reply.body
        assert (reply.body["commission_minor"], reply.body["commission_amount"]) == (minor, shown), \
            (currency, amount, reply.body)
        assert reply.body["amount"] == amount
