"""The affiliate money reconciled to the minor unit under a randomized load: thousands of clicks
and sales in three currencies, sales reported before their click (out of order) and after it,
re-reports (some concurrent), partial and whole refunds (some retried, some while the sale is
pending), and the count worker killed (SIGKILL) and restarted while all this happens. At the end:
every conversion owes what an independent model computes; the sums per plan and currency agree
between the model, `shoplink reconcile`, the affiliate report, the creators' statements and the
stats API's funnel (orders, GMV, commission); and paying every creator pays exactly that, once."""

from __future__ import annotations

import asyncio
import random
import signal
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from shoplink.config import Settings
from shoplink.money import percentage_of, to_decimal_string

from support.affiliate_data import (
    click_event,
    create_plan,
    insert_anchor,
    ms,
    new_viewer,
    seller_with_products,
    xadd_click,
)
from support.api import AccountFactory, Api
from support.count import run_shoplink, start_serving_count_worker, stop_count_worker
from support.wait import until

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SEED = 20261206
CLICKS = 3000
SALE_SHARE = 0.5  # of the clicks lead to a sale
NEVER_ARRIVES = 40  # sales whose click id never reaches the stream
CURRENCIES = ("USD", "JPY", "KWD")
RATES = ("12.50", "7.77")
KILLS = 4
CONCURRENCY = 16


@dataclass
class Sale:
    order_id: str
    amount_minor: int
    currency: str
    click: dict[str, Any] | None  # None: the click never arrives
    rate_bp: int
    by_viewer: bool = False
    refunds: list[int] = field(default_factory=list)
    conversion_id: int | None = None

    @property
    def amount(self) -> str:
        return to_decimal_string(self.amount_minor, self.currency)

    @property
    def refunded(self) -> int:
        return sum(self.refunds)

    @property
    def owed(self) -> int:
        return 0 if self.click is None else percentage_of(self.amount_minor - self.refunded,
                                                          self.rate_bp)


@pytest.fixture
async def server(start_server: Any) -> TestServer:
    """Commission payable at once (return window 0), so that the end can pay everyone; no rate
    limits (the load is one seller's token)."""
    started: TestServer = await start_server(return_window_days=0, rate_limits=False)
    return started


async def _gather(jobs: list[Any]) -> list[Any]:
    sem = asyncio.Semaphore(CONCURRENCY)

    async def one(job: Any) -> Any:
        async with sem:
            return await job

    return list(await asyncio.gather(*(one(j) for j in jobs)))


async def test_randomized_money_reconciles_to_the_minor_unit(
        settings: Settings, make_account: AccountFactory, pool: asyncpg.Pool, redis: Redis) -> None:
    rng = random.Random(SEED)
    seller, shop_id, products = await seller_with_products(make_account, prices=["10.00"])
    plans = [await create_plan(seller, products, rate=rate) for rate in RATES]
    creators = [await make_account("creator") for _ in range(3)]
    anchors: list[tuple[Api, dict[str, Any], tuple[int, str]]] = []
    for enrolled in creators:
        for plan in plans:
            assert (await enrolled.post(f"/api/v1/plans/{plan['id']}/join")).status == 201
            anchors.append((enrolled, plan, await insert_anchor(
                pool, creator_id=enrolled.account_id, product_id=products[0], plan_id=plan["id"])))

    now = datetime.now(UTC)
    sales: list[Sale] = []
    clicks_only: list[dict[str, Any]] = []
    for n in range(CLICKS):
        creator, plan, (anchor_id, code) = rng.choice(anchors)
        event = click_event(anchor_id=anchor_id, code=code, product_id=products[0], shop_id=shop_id,
                            creator_id=creator.account_id, plan_id=plan["id"],
                            rate_bp=plan["rate_bp"], viewer=new_viewer(),
                            ts_ms=ms(now - timedelta(seconds=rng.randint(60, 3 * 86400))))
        if rng.random() < SALE_SHARE:
            currency = rng.choice(CURRENCIES)
            sales.append(Sale(f"O-{n}", rng.randint(1, 5_000_000), currency, event,
                              plan["rate_bp"], by_viewer=rng.random() < 0.1))
        else:
            clicks_only.append(event)
    for n in range(NEVER_ARRIVES):
        sales.append(Sale(f"LOST-{n}", rng.randint(1, 100_000), "USD", None, 0))
    rng.shuffle(sales)

    async def report(sale: Sale, expect: tuple[int, ...] = (201,)) -> None:
        body: dict[str, Any] = {"shop_id": shop_id, "order_id": sale.order_id,
                                "amount": sale.amount, "currency": sale.currency}
        if sale.click is None:
            body["click_id"] = click_event(anchor_id=None, product_id=None, shop_id=None,
                                           creator_id=None, plan_id=None,
                                           ts_ms=ms(now))["event_id"]
        elif sale.by_viewer:
            body["viewer"] = sale.click["viewer"]
        else:
            body["click_id"] = sale.click["event_id"]
        reply = await seller.post("/api/v1/conversions", body)
        assert reply.status in expect, (sale.order_id, reply.status, reply.body)
        assert sale.conversion_id in (None, reply.body["id"])
        sale.conversion_id = reply.body["id"]

    async def refund(sale: Sale) -> None:
        assert sale.conversion_id is not None
        left = sale.amount_minor - sale.refunded
        if left == 0:
            return
        whole = rng.random() < 0.15
        amount = left if whole else rng.randint(1, left)
        key = f"{sale.order_id}-r{len(sale.refunds)}"
        body: dict[str, Any] = {"refund_id": key}
        if not whole or rng.random() < 0.5:
            body["amount"] = to_decimal_string(amount, sale.currency)
        url = f"/api/v1/conversions/{sale.conversion_id}/refund"
        reply = await seller.post(url, body)
        assert reply.status == 200, (sale.order_id, body, reply.body)
        sale.refunds.append(amount)
        if rng.random() < 0.2:  # the shop retries the same refund: nothing more is refunded
            again = await seller.post(url, body)
            assert (again.status, again.body["refunded_minor"]) == (200, sale.refunded)

    async def start() -> asyncio.subprocess.Process:
        return await start_serving_count_worker(settings, attribution_reclaim_idle_s=1,
                                                attribution_sweep_s=0.2)

    worker = await start()
    kills = 0

    async def kill_and_restart() -> None:
        nonlocal worker, kills
        worker.send_signal(signal.SIGKILL)
        await stop_count_worker(worker)
        kills += 1
        worker = await start()

    try:
        # the load, in rounds; the worker is killed and restarted between some of them
        rounds = [sales[i::8] for i in range(8)]
        kill_after = set(rng.sample(range(8), KILLS))
        click_chunks = [clicks_only[i::8] for i in range(8)]
        for n, batch in enumerate(rounds):
            before = [s for s in batch if s.click is None or rng.random() < 0.5]  # sale first
            after = [s for s in batch if s not in before]
            await _gather([report(s) for s in before])
            for s in batch:
                if s.click is not None:
                    await xadd_click(redis, s.click)
            for event in click_chunks[n]:
                await xadd_click(redis, event)
            await _gather([report(s) for s in after])
            # re-reports, some concurrent with each other
            again = rng.sample(batch, len(batch) // 5)
            await _gather([report(s, (200,)) for s in again + again[: len(again) // 2]])
            await _gather([refund(s) for s in batch if rng.random() < 0.35])
            if n in kill_after:
                await kill_and_restart()
        assert kills == KILLS

        credited = [s.conversion_id for s in sales if s.click is not None]

        async def settled() -> bool:
            async with pool.acquire() as con:
                waiting: int = await con.fetchval(
                    "SELECT count(*) FROM conversions WHERE id = ANY($1::bigint[]) "
                    "AND click_id IS NULL", credited)
            return waiting == 0

        await until(settled, timeout=120, interval=0.2)
        # a few more refunds after everything was credited
        await _gather([refund(s) for s in rng.sample(sales, 100)])
    finally:
        exit_code, err = await stop_count_worker(worker)
    assert exit_code == 0, err[-3000:]

    # 1. every conversion, against the model
    by_id = {s.conversion_id: s for s in sales}
    async with pool.acquire() as con:
        rows = await con.fetch("SELECT * FROM conversions WHERE shop_id = $1", shop_id)
    assert len(rows) == len(sales)
    for r in rows:
        sale = by_id[r["id"]]
        stored_owed = r["commission_minor"] - r["commission_refunded_minor"]
        assert (r["refunded_minor"], stored_owed) == (sale.refunded, sale.owed), sale.order_id
        if sale.click is None:
            assert (r["click_id"], r["reason"]) == (None, "pending_attribution")
        else:
            assert r["click_id"] == sale.click["event_id"]

    model: dict[tuple[int, str], int] = defaultdict(int)
    per_creator: dict[tuple[int, str], int] = defaultdict(int)
    plan_of_rate = {p["rate_bp"]: p["id"] for p in plans}
    for s in sales:
        if s.click is not None:
            model[(plan_of_rate[s.rate_bp], s.currency)] += s.owed
            per_creator[(s.click["creator_id"], s.currency)] += s.owed

    # 2. `shoplink reconcile`
    exit_code, out, err = await run_shoplink(settings, "reconcile")
    assert exit_code == 0, (out, err)
    result = orjson.loads(out)
    assert result["ok"] and result["problems"] == []
    totals: dict[str, int] = defaultdict(int)
    for (_, currency), plan_owed in model.items():
        totals[currency] += plan_owed
    assert result["commission_owed"] == {c: to_decimal_string(v, c) for c, v in totals.items()}

    # 3. the affiliate report per plan
    plan_report = (await seller.get("/api/v1/reports/affiliates", params={"group_by": "plan"})).body
    reported = {(i["plan_id"], line["currency"]): line["commission_owed_minor"]
                for i in plan_report["items"] for line in i["sales"]}
    assert reported == {k: v for k, v in model.items() if k in reported}
    assert set(reported) == set(model)

    # 4. each creator's statement
    stated: dict[tuple[int, str], int] = {}
    for account in creators:
        statement = (await account.get("/api/v1/statements/earnings")).body
        for t in statement["totals"]:
            stated[(account.account_id, t["currency"])] = t["commission_owed_minor"]
            assert t["commission_owed_minor"] == t["payable_minor"] + t["frozen_minor"] + \
                t["pending_minor"] + t["paid_minor"]
    assert stated == dict(per_creator)

    # 5. the stats API's funnel per plan: orders, GMV and commission (net of refunds)
    for plan in plans:
        doc = (await seller.get(f"/api/v1/stats/plans/{plan['id']}",
                                params={"granularity": "day"})).body
        mine = [s for s in sales if s.click is not None and plan_of_rate[s.rate_bp] == plan["id"]
                and s.refunded < s.amount_minor]  # credited, not wholly refunded: an order
        assert doc["funnel"]["orders"] == len(mine)
        gmv: dict[str, int] = defaultdict(int)
        fees: dict[str, int] = defaultdict(int)
        for s in mine:
            gmv[s.currency] += s.amount_minor - s.refunded
            fees[s.currency] += s.owed
        assert {g["currency"]: g["amount_minor"] for g in doc["funnel"]["gmv"]} == gmv
        assert {c["currency"]: c["amount_minor"] for c in doc["funnel"]["commission"]} == fees
        assert {cur: v for cur, v in fees.items() if v} == {
            cur: v for (pid, cur), v in model.items() if pid == plan["id"] and v}

    # 6. paying everyone pays exactly what is owed, once
    for (creator_id, currency), due in per_creator.items():
        if due == 0:
            continue
        pay = {"creator_id": creator_id, "currency": currency, "reference": f"P-{creator_id}-{currency}"}
        reply = await seller.post("/api/v1/payouts", pay)
        assert (reply.status, reply.body["amount_minor"]) == (201, due)
        twice = await seller.post("/api/v1/payouts", {**pay, "reference": "twice"})
        assert twice.status == 409
    exit_code, out, err = await run_shoplink(settings, "reconcile")
    assert exit_code == 0, (out, err)
