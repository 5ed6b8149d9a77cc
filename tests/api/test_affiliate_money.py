"""Affiliate money over the real HTTP API: sales that wait for their click, partial refunds,
settlement states and who may change them, payouts, statements (JSON and CSV)."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from shoplink.affiliates.pending import PendingSales
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
from support.wait import until

DAY = timedelta(days=1)
RETURN_WINDOW = 14 * DAY  # SHOPLINK_RETURN_WINDOW_DAYS default
PERIOD = {"from": "2029-12-01", "to": "2030-03-01"}


class Shop:
    """A seller with a plan at 15 % and two enrolled creators, each with an anchor."""

    def __init__(self, server: TestServer, pool: asyncpg.Pool, redis: Redis) -> None:
        self.clock = Clock()
        server.app[AFFILIATES].now = self.clock
        self.pool, self.redis = pool, redis

    async def setup(self, make_account: AccountFactory, domain: str = "shop.example") -> Shop:
        self.seller, self.shop_id, products = await seller_with_products(
            make_account, prices=["100.00"], domain=domain)
        self.product_id = products[0]
        self.plan = await create_plan(self.seller, products, rate="15.00")
        self.creators = [await make_account("creator") for _ in range(2)]
        self.anchors = []
        for creator in self.creators:
            assert (await creator.post(f"/api/v1/plans/{self.plan['id']}/join")).status == 201
            self.anchors.append(await insert_anchor(
                self.pool, creator_id=creator.account_id or 0, product_id=self.product_id,
                plan_id=self.plan["id"]))
        return self

    def click(self, creator: int = 0, viewer: str | None = None) -> dict[str, Any]:
        """A click event of creator n's anchor, one hour before now (not sent yet)."""
        anchor_id, code = self.anchors[creator]
        return click_event(anchor_id=anchor_id, code=code, product_id=self.product_id,
                           shop_id=self.shop_id, creator_id=self.creators[creator].account_id,
                           plan_id=self.plan["id"], rate_bp=1500,
                           ts_ms=ms(self.clock() - timedelta(hours=1)),
                           viewer=viewer or new_viewer())

    async def send(self, *events: dict[str, Any]) -> None:
        for event in events:
            await xadd_click(self.redis, event)

    async def sale(self, order_id: str, amount: str = "100.00", currency: str = "USD",
                   **who: Any) -> dict[str, Any]:
        reply = await self.seller.post("/api/v1/conversions", {
            "shop_id": self.shop_id, "order_id": order_id, "amount": amount,
            "currency": currency, **who})
        assert reply.status == 201, reply.body
        body: dict[str, Any] = reply.body
        return body

    async def credited_sale(self, order_id: str, creator: int = 0, amount: str = "100.00",
                            currency: str = "USD") -> dict[str, Any]:
        event = self.click(creator)
        await self.send(event)
        await wait_for_clicks(self.pool, [event["event_id"]])
        sale = await self.sale(order_id, amount, currency, click_id=event["event_id"])
        assert sale["attribution"] == "attributed", sale
        return sale

    async def get(self, conversion_id: int, who: Api | None = None) -> dict[str, Any]:
        reply = await (who or self.seller).get(f"/api/v1/conversions/{conversion_id}")
        assert reply.status == 200, reply.body
        body: dict[str, Any] = reply.body
        return body


@pytest.mark.usefixtures("count_worker")
async def test_a_sale_reported_before_its_click_waits_and_is_credited_when_it_arrives(
        server: TestServer, make_account: AccountFactory, pool: asyncpg.Pool,
        redis: Redis) -> None:
    s = await Shop(server, pool, redis).setup(make_account)
    by_click, by_viewer, refunded_first = s.click(0), s.click(1), s.click(0)

    first = await s.sale("P-1", click_id=by_click["event_id"])
    assert (first["attribution"], first["reason"], first["attributed"]) == (
        "pending", "pending_attribution", False)
    assert first["pending_until"] == (T0 + timedelta(days=7)).isoformat()
    assert (first["commission_minor"], first["settlement"]) == (0, None)
    again = await s.seller.post("/api/v1/conversions", {
        "shop_id": s.shop_id, "order_id": "P-1", "amount": "100.00", "currency": "USD",
        "click_id": by_click["event_id"]})
    assert (again.status, again.body) == (200, first)  # idempotent while pending

    second = await s.sale("P-2", "59.99", viewer=by_viewer["viewer"])
    assert second["attribution"] == "pending"
    third = await s.sale("P-3", click_id=refunded_first["event_id"])
    refund = await s.seller.post(f"/api/v1/conversions/{third['id']}/refund", {"amount": "30.00"})
    assert refund.status == 200, refund.body
    assert (refund.body["refunded_minor"], refund.body["status"]) == (3000, "confirmed")

    await s.send(by_click, by_viewer, refunded_first)  # the clicks arrive; the worker settles

    async def credited() -> bool:
        states = [(await s.get(c["id"]))["attribution"] for c in (first, second, third)]
        return states == ["attributed"] * 3

    await until(credited, timeout=30, interval=0.1)
    alice, bob = s.creators
    one = await s.get(first["id"])
    assert (one["reason"], one["click_id"], one["creator_id"], one["pending_until"]) == (
        "last_click", by_click["event_id"], alice.account_id, None)
    assert one["commission_minor"] == one["commission_owed_minor"] == 1500
    assert one["settlement"]["state"] == "pending"
    two = await s.get(second["id"])
    assert (two["click_id"], two["creator_id"], two["commission_minor"]) == (
        by_viewer["event_id"], bob.account_id, percentage_of(5999, 1500))
    three = await s.get(third["id"])  # refunded while pending: the commission is on what was kept
    assert (three["commission_minor"], three["commission_refunded_minor"],
            three["commission_owed_minor"]) == (1500, 450, 1050)
    # re-reported after being credited: the credited result
    again = await s.seller.post("/api/v1/conversions", {
        "shop_id": s.shop_id, "order_id": "P-1", "amount": "100.00", "currency": "USD",
        "click_id": by_click["event_id"]})
    assert (again.status, again.body["click_id"]) == (200, by_click["event_id"])


async def test_a_pending_sale_past_its_bound_is_recorded_unattributed_with_its_reason(
        server: TestServer, make_account: AccountFactory, pool: asyncpg.Pool,
        redis: Redis) -> None:
    s = await Shop(server, pool, redis).setup(make_account)
    by_click = await s.sale("U-1", click_id=s.click()["event_id"])  # a click that never arrives
    by_viewer = await s.sale("U-2", viewer=new_viewer())
    # the attribution consumer's sweep (in `shoplink count`), on the test's clock
    sweeper = PendingSales(pool, window=7 * DAY, clock=s.clock)
    s.clock.advance(days=7, seconds=-1)
    assert (await sweeper.sweep()).pending == 2
    assert (await s.get(by_click["id"]))["attribution"] == "pending"
    s.clock.advance(seconds=1)
    result = await sweeper.sweep()
    assert (result.expired, result.credited, result.pending) == (2, 0, 0)
    one, two = await s.get(by_click["id"]), await s.get(by_viewer["id"])
    assert (one["attribution"], one["reason"], one["pending_until"]) == (
        "unattributed", "click_unknown", None)
    assert (two["attribution"], two["reason"]) == ("unattributed", "no_qualifying_click")
    assert (await sweeper.sweep()).expired == 0  # settled once


@pytest.mark.usefixtures("count_worker")
async def test_partial_refunds_reduce_the_commission_pro_rata_and_never_exceed_the_sale(
        server: TestServer, make_account: AccountFactory, pool: asyncpg.Pool,
        redis: Redis) -> None:
    s = await Shop(server, pool, redis).setup(make_account)
    sale = await s.credited_sale("R-1", amount="59.99")
    assert (sale["commission_minor"], sale["commission_owed_minor"]) == (900, 900)  # 899.85
    url = f"/api/v1/conversions/{sale['id']}/refund"

    async def refund(body: dict[str, Any] | None, status: int = 200) -> dict[str, Any]:
        reply = await s.seller.post(url, body)
        assert reply.status == status, reply.body
        out: dict[str, Any] = reply.body
        return out

    # kept 49.99 -> 15 % = 749.85 -> 750 (half-even on what the buyer kept)
    after = await refund({"amount": "10.00"})
    assert (after["refunded_minor"], after["net_amount_minor"], after["commission_owed_minor"],
            after["commission_refunded_minor"], after["status"]) == (1000, 4999, 750, 150,
                                                                     "confirmed")
    after = await refund({"amount": "20.00", "refund_id": "shop-r-7"})
    assert (after["refunded_minor"], after["commission_owed_minor"]) == (3000, 450)  # 449.85
    # the same refund retried: nothing more; the same id with another amount: 409
    assert (await refund({"amount": "20.00", "refund_id": "shop-r-7"}))["refunded_minor"] == 3000
    assert (await refund({"amount": "5.00", "refund_id": "shop-r-7"}, 409))["error"]["code"] \
        == "refund_conflict"
    # never above the sale; never zero or malformed
    too_much = await refund({"amount": "30.00"}, 422)
    assert too_much["error"]["details"][0]["code"] == "refund_exceeds_sale"
    for bad in ({"amount": "0"}, {"amount": "1.001"}, {"amount": "-1"}, {"amount": 5},
                {"extra": 1}):
        assert (await s.seller.post(url, bad)).status == 422, bad
    # no amount: the rest; the commission goes to zero
    after = await refund(None)
    assert (after["status"], after["refunded_minor"], after["net_amount_minor"],
            after["commission_owed_minor"], after["commission_refunded_minor"]) == (
        "refunded", 5999, 0, 0, 900)
    assert (await refund({"amount": "0.01"}, 409))["error"]["code"] == "already_refunded"
    async with pool.acquire() as con:
        assert await con.fetchval("SELECT sum(amount_minor) FROM conversion_refunds "
                                  "WHERE conversion_id = $1", sale["id"]) == 5999

    # a sale not credited to anyone can be refunded in part too
    plain = await s.sale("R-2", "10.00", click_id=s.click()["event_id"])
    reply = await s.seller.post(f"/api/v1/conversions/{plain['id']}/refund", {"amount": "2.50"})
    assert (reply.status, reply.body["net_amount"], reply.body["commission_owed_minor"]) == (
        200, "7.50", 0)


async def _post(who: Api, path: str, body: Any = None) -> tuple[int, Any]:
    reply = await who.post(path, body)
    return reply.status, reply.body


@pytest.mark.usefixtures("count_worker")
async def test_settlement_states_and_who_may_change_them(
        server: TestServer, make_account: AccountFactory, pool: asyncpg.Pool,
        redis: Redis) -> None:
    s = await Shop(server, pool, redis).setup(make_account)
    other, _, _ = await seller_with_products(make_account, prices=["1.00"], domain="other.example")
    alice, bob = s.creators
    first = await s.credited_sale("S-1")
    second = await s.credited_sale("S-2", amount="40.00")
    euro = await s.credited_sale("S-3", amount="80.00", currency="EUR")
    assert first["settlement"] == {"state": "pending", "payable_at": (T0 + RETURN_WINDOW).isoformat(),
                                   "frozen_at": None, "frozen_reason": None, "payout_id": None}
    freeze, unfreeze = (f"/api/v1/conversions/{first['id']}/{a}" for a in ("freeze", "unfreeze"))
    why = {"reason": "chargeback under review"}

    # who: the creator cannot (403), another seller does not see it (404)
    assert (await _post(alice, freeze, why))[0] == 403
    assert (await _post(other, freeze, why))[0] == 404
    assert (await _post(other, unfreeze, why))[0] == 404
    assert (await other.get(f"/api/v1/conversions/{first['id']}")).status == 404
    assert (await bob.get(f"/api/v1/conversions/{first['id']}")).status == 404
    assert (await s.get(first["id"], alice))["settlement"]["state"] == "pending"  # the creator sees it

    status, body = await _post(s.seller, freeze, why)
    assert (status, body["settlement"]["state"], body["settlement"]["frozen_reason"]) == (
        200, "frozen", "chargeback under review")
    assert (await _post(s.seller, freeze, why))[1]["error"]["code"] == "illegal_transition"
    assert (await _post(s.seller, freeze, {"reason": ""}))[0] == 422
    status, body = await _post(s.seller, unfreeze, {"reason": "resolved"})
    assert (status, body["settlement"]["state"], body["settlement"]["frozen_reason"]) == (
        200, "pending", None)
    assert (await _post(s.seller, unfreeze, why))[0] == 409

    pay = {"creator_id": alice.account_id, "currency": "USD", "reference": "BANK-1"}
    status, body = await _post(s.seller, "/api/v1/payouts", pay)
    assert (status, body["error"]["code"]) == (409, "nothing_payable")  # inside the return window

    s.clock.advance(days=14)  # the return window is over
    assert (await s.get(first["id"]))["settlement"]["state"] == "payable"
    assert (await _post(s.seller, f"/api/v1/conversions/{second['id']}/freeze", why))[0] == 200

    assert (await _post(alice, "/api/v1/payouts", pay))[0] == 403
    assert (await _post(other, "/api/v1/payouts", pay))[1]["error"]["code"] == "nothing_payable"
    status, payout = await _post(s.seller, "/api/v1/payouts", pay)
    assert status == 201, payout
    assert (payout["amount_minor"], payout["amount"], payout["conversions"], payout["currency"],
            payout["reference"]) == (1500, "15.00", 1, "USD", "BANK-1")
    # the same payout again is the same payout; nothing is paid twice
    assert await _post(s.seller, "/api/v1/payouts", pay) == (200, payout)
    assert (await _post(s.seller, "/api/v1/payouts", {**pay, "creator_id": bob.account_id}))[1][
        "error"]["code"] == "reference_conflict"
    assert (await _post(s.seller, "/api/v1/payouts", {**pay, "reference": "BANK-2"}))[1][
        "error"]["code"] == "nothing_payable"
    paid = await s.get(first["id"])
    assert (paid["settlement"]["state"], paid["settlement"]["payout_id"]) == ("paid", payout["id"])
    # a paid commission is not refunded, frozen or paid again
    status, body = await _post(s.seller, f"/api/v1/conversions/{first['id']}/refund")
    assert (status, body["error"]["code"]) == (409, "commission_paid")
    assert (await _post(s.seller, freeze, why))[0] == 409

    # the frozen sale: unfrozen, refunded in part, then paid on what was kept only
    assert (await _post(s.seller, f"/api/v1/conversions/{second['id']}/unfreeze",
                        {"reason": "ok"}))[0] == 200
    assert (await _post(s.seller, f"/api/v1/conversions/{second['id']}/refund",
                        {"amount": "10.00"}))[0] == 200
    status, later = await _post(s.seller, "/api/v1/payouts", {**pay, "reference": "BANK-3"})
    assert (status, later["amount_minor"]) == (201, percentage_of(3000, 1500))
    status, in_euro = await _post(s.seller, "/api/v1/payouts",
                                  {**pay, "currency": "EUR", "reference": "BANK-4"})
    assert (status, in_euro["amount_minor"]) == (201, 1200)
    assert (await s.get(euro["id"], alice))["settlement"]["state"] == "paid"

    # frozen, then refunded wholly: "refunded", and nothing to pay
    third = await s.credited_sale("S-4", amount="20.00")
    assert (await _post(s.seller, f"/api/v1/conversions/{third['id']}/freeze", why))[0] == 200
    status, body = await _post(s.seller, f"/api/v1/conversions/{third['id']}/refund", {})
    assert (status, body["settlement"]["state"], body["commission_owed_minor"]) == (
        200, "refunded", 0)
    assert (await _post(s.seller, f"/api/v1/conversions/{third['id']}/unfreeze", why))[0] == 409
    assert (await _post(s.seller, "/api/v1/payouts", {**pay, "reference": "BANK-5"}))[1][
        "error"]["code"] == "nothing_payable"

    for who, expected in ((s.seller, 200), (alice, 200), (bob, 404), (other, 404)):
        assert (await who.get(f"/api/v1/payouts/{payout['id']}")).status == expected
    async with pool.acquire() as con:
        reasons = await con.fetch("SELECT action, reason FROM conversion_holds "
                                  "WHERE conversion_id = $1 ORDER BY id", first["id"])
    assert [tuple(r) for r in reasons] == [("freeze", "chargeback under review"),
                                           ("unfreeze", "resolved")]


def _csv_rows(text: str) -> list[dict[str, str]]:
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    return list(csv.DictReader(io.StringIO(text, newline="")))


@pytest.mark.usefixtures("count_worker")
async def test_statements_per_plan_and_currency_in_json_and_csv(
        server: TestServer, make_account: AccountFactory, pool: asyncpg.Pool,
        redis: Redis) -> None:
    s = await Shop(server, pool, redis).setup(make_account)
    alice, bob = s.creators
    await s.credited_sale("T-1")  # 15.00
    t2 = await s.credited_sale("T-2", amount="50.00")  # 7.50, refunded in part below
    frozen = await s.credited_sale("T-3", amount="20.00")  # 3.00
    await s.credited_sale("T-4", amount="1000", currency="JPY")  # 150
    await s.credited_sale("T-5", creator=1)  # bob's
    s.clock.advance(days=14)
    assert (await _post(s.seller, "/api/v1/payouts", {
        "creator_id": alice.account_id, "currency": "JPY", "reference": "JP-1"}))[0] == 201
    s.clock.advance(seconds=1)
    late = await s.credited_sale("T-6", amount="10.00")  # inside the return window: 1.50 pending
    await s.seller.post(f"/api/v1/conversions/{frozen['id']}/freeze", {"reason": "review"})
    await s.seller.post(f"/api/v1/conversions/{t2['id']}/refund", {"amount": "25.00"})

    reply = await alice.get("/api/v1/statements/earnings", params=PERIOD)
    assert reply.status == 200, reply.body
    statement = reply.body
    assert statement["creator_id"] == alice.account_id
    lines = {(i["plan_id"], i["currency"]): i for i in statement["items"]}
    usd = lines[(s.plan["id"], "USD")]
    assert (usd["sales"], usd["sales_amount"], usd["refunds"], usd["net_sales"]) == (
        4, "180.00", "25.00", "155.00")
    assert (usd["commission"], usd["commission_refunded"], usd["commission_owed"]) == (
        "27.00", "3.75", "23.25")
    assert (usd["payable"], usd["frozen"], usd["pending"], usd["paid"]) == (
        "18.75", "3.00", "1.50", "0.00")
    jpy = lines[(s.plan["id"], "JPY")]
    assert (jpy["commission_owed"], jpy["paid"], jpy["paid_minor"]) == ("150", "150", 150)
    assert [t["currency"] for t in statement["totals"]] == ["JPY", "USD"]  # never mixed
    assert [(p["reference"], p["amount"]) for p in statement["payouts"]] == [("JP-1", "150")]
    assert late["settlement"]["state"] == "pending"

    reply = await alice.get("/api/v1/statements/earnings.csv", params=PERIOD)
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/csv")
    assert "attachment" in reply.headers["Content-Disposition"]
    rows = _csv_rows(reply.body)
    assert {(r["currency"], r["commission_owed"], r["payable"]) for r in rows} == {
        ("USD", "23.25", "18.75"), ("JPY", "150", "0")}

    # bob sees only his; an analyst may ask for anyone's
    bobs = (await bob.get("/api/v1/statements/earnings", params=PERIOD)).body
    assert [(i["currency"], i["commission_owed"]) for i in bobs["items"]] == [("USD", "15.00")]
    analyst = await make_account("analyst")
    theirs = (await analyst.get("/api/v1/statements/earnings",
                                params={**PERIOD, "creator_id": str(alice.account_id)})).body
    assert theirs["items"] == statement["items"]
    assert (await alice.get("/api/v1/statements/earnings",
                            params={"from": "2030-02-01", "to": "2030-01-01"})).status == 422

    # the seller: what is due to each creator, per currency
    due = (await s.seller.get("/api/v1/statements/payouts-due")).body
    by = {(i["creator_id"], i["currency"]): i for i in due["items"]}
    assert (by[(alice.account_id, "USD")]["payable"], by[(alice.account_id, "USD")]["paid"]) == (
        "18.75", "0.00")
    assert by[(bob.account_id, "USD")]["payable"] == "15.00"
    assert by[(alice.account_id, "JPY")]["paid"] == "150"
    reply = await s.seller.get("/api/v1/statements/payouts-due.csv")
    assert reply.status == 200
    assert {(r["creator_id"], r["currency"], r["payable"]) for r in _csv_rows(reply.body)} == {
        (str(alice.account_id), "USD", "18.75"), (str(alice.account_id), "JPY", "0"),
        (str(bob.account_id), "USD", "15.00")}
    assert (await alice.get("/api/v1/statements/payouts-due")).status == 403


@pytest.mark.usefixtures("count_worker")
async def test_the_conversions_each_account_may_list(
        server: TestServer, make_account: AccountFactory, pool: asyncpg.Pool,
        redis: Redis) -> None:
    s = await Shop(server, pool, redis).setup(make_account)
    other = await Shop(server, pool, redis).setup(make_account, domain="other.example")
    alice, bob = s.creators
    mine = [await s.credited_sale(f"L-{n}") for n in range(3)]
    bobs = await s.credited_sale("L-bob", creator=1)
    waiting = await s.sale("L-wait", click_id=s.click()["event_id"])
    theirs = await other.credited_sale("L-other")

    async def listed(who: Api, **query: str) -> list[int]:
        ids: list[int] = []
        after = "0"
        while True:  # pages of two
            reply = await who.get("/api/v1/conversions", params={**query, "limit": "2",
                                                                 "after": after})
            assert reply.status == 200, reply.body
            ids += [c["id"] for c in reply.body["items"]]
            if reply.body["next_after"] is None:
                return ids
            after = str(reply.body["next_after"])

    everything = [c["id"] for c in (*mine, bobs, waiting)]
    assert await listed(s.seller) == everything
    assert await listed(s.seller, attribution="pending") == [waiting["id"]]
    assert await listed(s.seller, attribution="attributed") == everything[:-1]
    assert await listed(s.seller, plan_id=str(other.plan["id"])) == []
    assert await listed(alice) == [c["id"] for c in mine]
    assert await listed(bob) == [bobs["id"]]
    assert await listed(other.seller) == [theirs["id"]]
    assert await listed(await make_account("analyst")) == [*everything, theirs["id"]]
    reply = await alice.get("/api/v1/conversions", params={"attribution": "maybe"})
    assert (reply.status, reply.error_code) == (400, "invalid_query")


@pytest.mark.usefixtures("count_worker")
async def test_concurrent_payouts_and_refunds_never_pay_twice_or_refund_past_the_sale(
        server: TestServer, make_account: AccountFactory, pool: asyncpg.Pool,
        redis: Redis) -> None:
    s = await Shop(server, pool, redis).setup(make_account)
    alice = s.creators[0]
    sales = [await s.credited_sale(f"C-{n}", amount="10.00") for n in range(6)]
    # two refunds of 6.00 each of a 10.00 sale, at once: one passes, the other would exceed it
    url = f"/api/v1/conversions/{sales[0]['id']}/refund"
    replies = await asyncio.gather(*(s.seller.post(url, {"amount": "6.00"}) for _ in range(2)))
    assert sorted(r.status for r in replies) == [200, 422]
    assert (await s.get(sales[0]["id"]))["refunded_minor"] == 600
    s.clock.advance(days=14)
    # five payouts with different references at once: one pays everything, the others nothing
    replies = await asyncio.gather(*(s.seller.post("/api/v1/payouts", {
        "creator_id": alice.account_id, "currency": "USD", "reference": f"RACE-{n}"})
        for n in range(5)))
    assert sorted(r.status for r in replies) == [201, 409, 409, 409, 409]
    paid = next(r.body for r in replies if r.status == 201)
    assert (paid["amount_minor"], paid["conversions"]) == (60 + 5 * 150, 6)
    async with pool.acquire() as con:
        assert await con.fetchval("SELECT count(*) FROM payouts") == 1
        assert await con.fetchval("SELECT count(*) FROM conversions WHERE payout_id = $1",
                                  paid["id"]) == 6
