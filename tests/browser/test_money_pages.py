"""The money pages in the browser, at desktop and phone sizes: a seller's sales are reported
through the API (their clicks stored by the count worker); on /sales the seller refunds part of
one (after a refund larger than the sale is refused next to the button), freezes and unfreezes
another; once the return window is over, records a payout on /payouts; the creator's /statement
shows the commission by state (pending, payable, frozen, paid), the refunds and the payout.

Every page is checked by walk.Walker.check (no sideways scroll, no console error, no serious or
critical axe-core violation) and saved under artifacts/screenshots/walk/."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Browser
from redis.asyncio import Redis

from shoplink.keys import AFFILIATES

from .conftest import WebApp
from .walk import Walker, sign_in_as, walker
from support.affiliate_data import (
    Clock,
    click_event,
    create_plan,
    insert_anchor,
    ms,
    seller_with_products,
    wait_for_clicks,
    xadd_click,
)
from support.api import Account

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("count_worker")]


class Sales:
    """A seller with a plan at 15 %, one enrolled creator with an anchor, sales credited to it."""

    def __init__(self, webapp: WebApp, redis: Redis, clock: Clock) -> None:
        self.webapp, self.redis, self.clock = webapp, redis, clock

    async def setup(self, size: str) -> Sales:
        async def make_account(*roles: str, name: str | None = None) -> Account:
            made = await self.webapp.account(*roles, name=name or f"Money Seller {size}")
            return Account(made.session, made.base_url, made.token or "", made.account_id or 0)

        self.seller, self.shop_id, products = await seller_with_products(
            make_account, prices=["100.00"], domain=f"money-{size}.example")
        self.product_id = products[0]
        self.plan = await create_plan(self.seller, products, rate="15.00", name=f"Money plan {size}")
        self.creator = await self.webapp.account("creator", name=f"Money Creator {size}")
        assert (await self.creator.post(f"/api/v1/plans/{self.plan['id']}/join")).status == 201
        self.anchor = await insert_anchor(self.webapp.pool, creator_id=self.creator.account_id or 0,
                                          product_id=self.product_id, plan_id=self.plan["id"])
        return self

    async def sale(self, order_id: str, amount: str) -> dict[str, Any]:
        """A click of the creator's anchor an hour ago, stored, then the shop reports the sale."""
        anchor_id, code = self.anchor
        event = click_event(anchor_id=anchor_id, code=code, product_id=self.product_id,
                            shop_id=self.shop_id, creator_id=self.creator.account_id,
                            plan_id=self.plan["id"], rate_bp=1500,
                            ts_ms=ms(self.clock() - timedelta(hours=1)))
        await xadd_click(self.redis, event)
        await wait_for_clicks(self.webapp.pool, [event["event_id"]])
        reply = await self.seller.post("/api/v1/conversions", {
            "shop_id": self.shop_id, "order_id": order_id, "amount": amount, "currency": "USD",
            "click_id": event["event_id"]})
        assert reply.status == 201 and reply.body["attribution"] == "attributed", reply.body
        body: dict[str, Any] = reply.body
        return body


async def seller_works_sales(w: Walker, refunded: dict[str, Any], reviewed: dict[str, Any]) -> None:
    pg = w.page
    await w.goto("/sales")
    one, two = (f".sale-card[data-id='{c['id']}']" for c in (refunded, reviewed))
    await pg.wait_for_selector(f"{one} [data-field=settlement]:has-text('Pending')")
    await w.check("money-sales")

    await pg.fill(f"{one} input[name=amount]", "500.00")  # more than the sale: refused, shown next to it
    await pg.click(f"{one} button[data-action=refund]")
    await pg.wait_for_selector(f"{one} [data-error-for=refund]:not(:empty)")
    assert "USD 100.00" in await pg.inner_text(f"{one} [data-field=amount]")  # nothing refunded
    assert await pg.inner_text(f"{one} [data-field=refunded]") == "nothing"
    # The browser logs the refused request itself; that one line is expected, anything else is not.
    assert len(w.console_errors) == 1 and "422" in w.console_errors[0], w.console_errors
    w.console_errors.clear()
    await pg.fill(f"{one} input[name=amount]", "10.00")
    await pg.click(f"{one} button[data-action=refund]")
    await pg.wait_for_selector(f"{one} [data-field=refunded]:has-text('USD 10.00')")
    assert "USD 13.50 owed of USD 15.00" in await pg.inner_text(f"{one} [data-field=commission]")

    await pg.fill(f"{two} input[name=reason]", "chargeback review")
    await pg.click(f"{two} button[data-action=freeze]")
    await pg.wait_for_selector(f"{two}[data-state=frozen] [data-field=settlement]:has-text('chargeback review')")
    await w.check("money-sales-frozen")
    await pg.fill(f"{two} input[name=reason]", "review done")
    await pg.click(f"{two} button[data-action=unfreeze]")
    await pg.wait_for_selector(f"{two}[data-state=pending] button[data-action=freeze]")


async def seller_pays(w: Walker, creator_id: int, reference: str) -> None:
    pg = w.page
    await w.goto("/payouts")
    row = f"#payouts-table tr[data-creator='{creator_id}'][data-currency=USD]"
    await pg.wait_for_selector(f"{row} td[data-col=payable]:has-text('USD 19.50')")
    assert "Money Creator" in await pg.inner_text(f"{row} td[data-col=creator]")
    await pg.wait_for_selector("#payouts-made .empty")
    csv = await pg.request.get(w.base + (await pg.get_attribute("#payouts-csv", "href") or ""))
    assert csv.status == 200 and "text/csv" in csv.headers["content-type"]
    await w.check("money-payouts-due")
    await pg.fill(f"{row} input[name=reference]", reference)
    await pg.click(f"{row} button[data-action=pay]")
    await pg.wait_for_selector(f"#payouts-status:has-text('{reference}')")
    await pg.wait_for_selector(f"{row} td[data-col=paid]:has-text('USD 19.50')")
    await pg.wait_for_selector(f"{row} td[data-col=payable]:has-text('USD 0.00')")
    await pg.wait_for_selector(f"#payouts-made-table tr:has-text('{reference}'):has-text('USD 19.50')")
    await w.check("money-payouts")


async def creator_reads_statement(w: Walker, plan_id: int, reference: str) -> None:
    pg = w.page
    await w.goto("/statement")
    row = f"#statement-table tr[data-plan='{plan_id}'][data-currency=USD]"
    await pg.wait_for_selector(row)
    cells = {col: await pg.inner_text(f"{row} td[data-col={col}]") for col in (
        "plan", "sales", "refunds", "commission_owed", "pending", "payable", "frozen", "paid")}
    assert cells == {"plan": "Money plan " + w.size, "sales": "4", "refunds": "USD 10.00",
                     "commission_owed": "USD 24.00", "pending": "USD 1.50", "payable": "USD 0.00",
                     "frozen": "USD 3.00", "paid": "USD 19.50"}, cells
    for state, amount in (("pending", "1.50"), ("payable", "0.00"), ("frozen", "3.00"), ("paid", "19.50")):
        await pg.wait_for_selector(f"[data-kpi='{state}-USD']:has-text('USD {amount}')")
    await pg.wait_for_selector(f"#statement-payouts-table tr:has-text('{reference}')")
    csv = await pg.request.get(w.base + (await pg.get_attribute("#statement-csv", "href") or ""))
    assert csv.status == 200 and "19.50" in await csv.text()
    await w.check("money-statement")

    # Another period: a year ago nothing was sold; the page says what to do next.
    await pg.fill("#statement-from", "2020-01-01")
    await pg.fill("#statement-through", "2020-01-31")
    await pg.click("#statement-go")
    await pg.wait_for_selector("#statement .empty")
    await pg.wait_for_selector("#statement-payouts .empty")
    assert "to=2020-02-01" in (await pg.get_attribute("#statement-csv", "href") or "")
    await w.check("money-statement-empty")


@pytest.mark.parametrize("size", ["desktop", "phone"])
async def test_sales_payouts_and_statement_in_the_browser(webapp: WebApp, browser: Browser, redis: Redis,
                                                          size: str) -> None:
    clock = Clock(datetime.now(UTC).replace(microsecond=0))
    webapp.server.app[AFFILIATES].now = clock
    s = await Sales(webapp, redis, clock).setup(size)
    creator_id = s.creator.account_id or 0
    reference = f"SEPA-{size}-1"
    async with walker(browser, webapp.base, size) as sw, walker(browser, webapp.base, size) as cw:
        await sign_in_as(cw, s.creator.token or "", "/statement")
        await cw.page.wait_for_selector("#statement .empty")  # nothing sold yet
        await cw.check("money-statement-nothing-yet")
        assert await cw.page.query_selector("nav a[href='/statement'][aria-current=page]")
        assert not await cw.page.query_selector("nav a[href='/payouts']")  # the seller's pages
        await sign_in_as(sw, s.seller.token or "", "/payouts")
        await sw.page.wait_for_selector("#payouts .empty")
        await sw.check("money-payouts-empty")
        assert await sw.page.query_selector("nav a[href='/sales']")
        assert not await sw.page.query_selector("nav a[href='/statement']")  # the creator's page

        refunded = await s.sale("M-1", "100.00")   # 15.00, refunded 10.00 on the page: 13.50
        reviewed = await s.sale("M-2", "40.00")    # 6.00, frozen and unfrozen on the page
        held = await s.sale("M-3", "20.00")        # 3.00, stays frozen
        await seller_works_sales(sw, refunded, reviewed)
        frozen = await s.seller.post(f"/api/v1/conversions/{held['id']}/freeze", {"reason": "fraud check"})
        assert frozen.status == 200, frozen.body

        clock.advance(days=15)  # past the return window: the first two are payable
        await s.sale("M-4", "10.00")               # 1.50, pending
        await seller_pays(sw, creator_id, reference)
        clock.advance(minutes=1)  # the statement's default period ends now: the payout is inside it
        await creator_reads_statement(cw, s.plan["id"], reference)
