"""Reports per plan and per creator over a period, JSON and CSV, each role seeing its share."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from shoplink.keys import AFFILIATES

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
from support.api import AccountFactory

DAY = timedelta(days=1)
PERIOD = "from=2029-12-01&to=2030-01-02"


@pytest.mark.usefixtures("count_worker")  # attributes the plan clicks, as deployed
async def test_reports_by_plan_and_creator(server: TestServer, make_account: AccountFactory,
                                           pool: asyncpg.Pool, redis: Redis) -> None:
    server.app[AFFILIATES].now = Clock()
    seller, shop_id, products = await seller_with_products(make_account, prices=["50.00"])
    rival, rival_shop, rival_products = await seller_with_products(
        make_account, prices=["10.00"], domain="rival.example")
    plan = await create_plan(seller, products, rate="10.00")
    rival_plan = await create_plan(rival, rival_products, rate="20.00")
    alice, bob = await make_account("creator"), await make_account("creator")
    analyst = await make_account("analyst")
    for creator in (alice, bob):
        await creator.post(f"/api/v1/plans/{plan['id']}/join")
    await bob.post(f"/api/v1/plans/{rival_plan['id']}/join")

    events = []

    async def click(creator: Any, plan_id: int, product_id: int, shop: int, ua: str,
                    viewer: str) -> str:
        anchor = await insert_anchor(pool, creator_id=creator.account_id, product_id=product_id,
                                     plan_id=plan_id)
        event = click_event(anchor_id=anchor[0], code=anchor[1], product_id=product_id,
                            shop_id=shop, creator_id=creator.account_id, plan_id=plan_id,
                            rate_bp=1000 if plan_id == plan["id"] else 2000,
                            ts_ms=ms(T0 - DAY), viewer=viewer, ua_class=ua)
        await xadd_click(redis, event)
        events.append(event["event_id"])
        return str(event["event_id"])

    v1, v2, v3 = new_viewer(), new_viewer(), new_viewer()
    await click(alice, plan["id"], products[0], shop_id, "human", v1)
    await click(alice, plan["id"], products[0], shop_id, "bot", new_viewer())
    await click(alice, plan["id"], products[0], shop_id, "link_preview", new_viewer())
    await click(bob, plan["id"], products[0], shop_id, "human", v2)
    await click(bob, rival_plan["id"], rival_products[0], rival_shop, "human", v3)
    await wait_for_clicks(pool, events)

    for order, viewer, amount in (("o1", v1, "50.00"), ("o2", v2, "30.00"), ("o3", v1, "20.00")):
        reply = await seller.post("/api/v1/conversions", {
            "shop_id": shop_id, "order_id": order, "amount": amount, "currency": "USD",
            "viewer": viewer})
        assert reply.status == 201 and reply.body["attributed"], reply.body
        if order == "o3":
            await seller.post(f"/api/v1/conversions/{reply.body['id']}/refund")
    await rival.post("/api/v1/conversions", {"shop_id": rival_shop, "order_id": "r1",
                                             "amount": "10.00", "currency": "USD", "viewer": v3})

    # the seller: their plan only, clicks by class, sales and commission net of the refund
    report = (await seller.get(f"/api/v1/reports/affiliates?group_by=plan&{PERIOD}")).body
    assert [i["plan_id"] for i in report["items"]] == [plan["id"]]
    item = report["items"][0]
    assert item["clicks"] == {"human": 2, "bot": 1, "link_preview": 1, "total": 4}
    assert (item["conversions"], item["refunded"]) == (2, 1)
    assert item["sales"] == [{"currency": "USD", "conversions": 2, "refunded": 1,
                              "amount_minor": 8000, "amount": "80.00",
                              "commission_owed_minor": 800, "commission_owed": "8.00"}]

    # per creator, as the seller sees it
    by_creator = (await seller.get(f"/api/v1/reports/affiliates?group_by=creator&{PERIOD}")).body
    owed = {i["creator_id"]: i["sales"][0]["commission_owed"] for i in by_creator["items"]}
    assert owed == {alice.account_id: "5.00", bob.account_id: "3.00"}

    # bob sees his own earnings across both plans, not alice's
    mine = (await bob.get(f"/api/v1/reports/affiliates?group_by=plan&{PERIOD}")).body["items"]
    assert {i["plan_id"]: i["sales"][0]["commission_owed"] for i in mine} == {
        plan["id"]: "3.00", rival_plan["id"]: "2.00"}
    assert {i["plan_id"]: i["clicks"]["total"] for i in mine} == {plan["id"]: 1, rival_plan["id"]: 1}

    # analysts see everything; filters narrow
    everything = (await analyst.get(f"/api/v1/reports/affiliates?{PERIOD}")).body["items"]
    assert {i["plan_id"] for i in everything} == {plan["id"], rival_plan["id"]}
    only = (await analyst.get(
        f"/api/v1/reports/affiliates?group_by=creator&creator_id={alice.account_id}&{PERIOD}")).body
    assert [i["creator_id"] for i in only["items"]] == [alice.account_id]

    # a period that excludes everything
    empty = await seller.get("/api/v1/reports/affiliates?from=2030-01-02&to=2030-02-01")
    assert empty.status == 200 and empty.body["items"] == []

    # CSV export
    reply = await seller.get(f"/api/v1/reports/affiliates.csv?group_by=creator&{PERIOD}")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/csv")
    assert reply.body.count("\r\n") == len(reply.body.splitlines())  # RFC 4180 line ends
    assert "attachment" in reply.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(reply.body)))
    assert {(r["id"], r["clicks_total"], r["sales_amount"], r["commission_owed"]) for r in rows} == {
        (str(alice.account_id), "3", "50.00", "5.00"), (str(bob.account_id), "1", "30.00", "3.00")}

    # malformed queries are 400s; a period that ends before it starts, or is too long, a 422
    for query in ("group_by=shop", "from=soon", "plan_id=x"):
        assert (await seller.get(f"/api/v1/reports/affiliates?{query}")).status == 400, query
    for query in ("from=2030-02-01&to=2030-01-01", "from=2020-01-01&to=2030-01-01"):
        reply = await seller.get(f"/api/v1/reports/affiliates?{query}")
        assert (reply.status, reply.body["error"]["details"][0]["field"]) == (422, "from"), query
    # RFC 3339 as written by others: lowercase t and z, a leap second
    reply = await seller.get("/api/v1/reports/affiliates?from=2016-12-31t23:59:60z&to=2017-01-02T00:00:00Z")
    assert reply.status == 200 and reply.body["from"] == "2017-01-01T00:00:00+00:00", reply.body
