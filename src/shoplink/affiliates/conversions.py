"""Sales reported by a seller's server, credited to the last qualifying click.

A qualifying click is a human click that reached the product page (outcome "redirected"), on a
product of the reporting shop, through a plan, with a commission rate in its snapshot, at most
the attribution window before the sale. The shop identifies the buyer by the click id the
redirect appended (`sl_click`) — whose viewer is then looked up, so the latest click of that
viewer still wins — or directly by the viewer hash. Reports are idempotent by (shop, order id);
a refund voids the commission (the row stays, status "refunded").
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import asyncpg

from shoplink.affiliates import repository as repo
from shoplink.affiliates.models import Conversion
from shoplink.affiliates.service import AffiliateService, parse_time
from shoplink.auth import policy
from shoplink.auth.models import Principal
from shoplink.catalog.service import CatalogService
from shoplink.errors import Conflict, NotFound, field_error
from shoplink.money import MoneyError, is_currency, percentage_of, to_minor

log = logging.getLogger(__name__)

CLOCK_SKEW = timedelta(minutes=5)


class ConversionService:
    def __init__(self, pool: asyncpg.Pool, *, catalog: CatalogService, plans: AffiliateService,
                 window: timedelta) -> None:
        self._pool = pool
        self._catalog = catalog
        self._plans = plans  # shares its clock
        self.window = window

    async def report(self, who: Principal, body: dict[str, Any]) -> tuple[Conversion, bool]:
        """(conversion, created). The same order reported again returns the first report."""
        policy.require(who, "conversions.report")
        shop = await self._catalog.get_shop(who, body["shop_id"])  # 404 unless the caller's
        now = self._plans.now()
        currency = body["currency"]
        if not is_currency(currency):
            raise field_error("currency", f"{currency} is not a supported ISO 4217 currency")
        try:
            amount_minor = to_minor(body["amount"], currency)
        except MoneyError as exc:
            raise field_error("amount", str(exc)) from None
        occurred_at = parse_time(body["occurred_at"], "occurred_at") if body.get("occurred_at") \
            else now
        if occurred_at > now + CLOCK_SKEW:
            raise field_error("occurred_at", "must not be in the future")
        click_id: str | None = body.get("click_id")
        viewer: str | None = body.get("viewer")
        if click_id is None and viewer is None:
            raise field_error("click_id", "send the click id (sl_click) or the viewer hash",
                              code="click_or_viewer_required")
        order_id = body["order_id"].strip()
        if not order_id:
            raise field_error("order_id", "must not be blank")

        async with self._pool.acquire() as con, con.transaction():
            existing = await repo.get_conversion_by_order(con, shop.id, order_id)
            if existing is not None:
                return self._same_order(existing, amount_minor, currency), False
            values: dict[str, Any] = {
                "shop_id": shop.id, "order_id": order_id, "amount_minor": amount_minor,
                "currency": currency, "occurred_at": occurred_at, "reported_at": now,
                "reported_by": who.account_id, "given_click_id": click_id, "given_viewer": viewer,
            }
            problem: str | None = None  # why the click id the shop sent did not help
            if click_id is not None:
                given = await repo.get_click(con, click_id)
                if given is None:
                    problem = "click_unknown"
                elif given.shop_id != shop.id:
                    problem = "click_of_another_shop"
                else:
                    viewer = given.viewer
            credited = None
            if viewer is not None:
                credited = await repo.last_qualifying_click(
                    con, viewer=viewer, shop_id=shop.id, since=occurred_at - self.window,
                    until=occurred_at)
            if credited is not None and credited.rate_bp is not None:
                reason = "last_click"
                values.update(
                    click_id=credited.event_id, plan_id=credited.plan_id,
                    creator_id=credited.creator_id, product_id=credited.product_id,
                    rate_bp=credited.rate_bp, rate_source=credited.rate_source,
                    commission_minor=percentage_of(amount_minor, credited.rate_bp))
            else:
                reason = problem or "no_qualifying_click"
            values["reason"] = reason
            new_id = await repo.insert_conversion(con, values)
            if new_id is None:  # a concurrent report of the same order won
                raced = await repo.get_conversion_by_order(con, shop.id, order_id)
                assert raced is not None
                return self._same_order(raced, amount_minor, currency), False
            conversion = await repo.get_conversion(con, new_id)
        assert conversion is not None
        log.info("conversion reported", extra={"conversion_id": conversion.id, "shop_id": shop.id,
                                               "attributed": conversion.click_id is not None,
                                               "reason": reason})
        return conversion, True

    @staticmethod
    def _same_order(existing: Conversion, amount_minor: int, currency: str) -> Conversion:
        if existing.amount_minor != amount_minor or existing.currency != currency:
            raise Conflict("this order was already reported with a different amount or currency",
                           code="order_conflict", details={"conversion_id": existing.id})
        return existing

    async def _owned(self, who: Principal, conversion_id: int, *, manage: bool) -> Conversion:
        async with self._pool.acquire() as con:
            conversion = await repo.get_conversion(con, conversion_id)
        if conversion is None:
            raise NotFound("conversion not found")
        if manage or not policy.can_read_all_stats(who):
            await self._catalog.get_shop(who, conversion.shop_id)  # 404 unless the caller's shop
        return conversion

    async def get(self, who: Principal, conversion_id: int) -> Conversion:
        return await self._owned(who, conversion_id, manage=False)

    async def refund(self, who: Principal, conversion_id: int) -> Conversion:
        """A refund or cancellation: the sale no longer counts and its commission is void."""
        policy.require(who, "conversions.report")
        await self._owned(who, conversion_id, manage=True)
        now = self._plans.now()
        async with self._pool.acquire() as con, con.transaction():
            conversion = await repo.get_conversion(con, conversion_id, for_update=True)
            assert conversion is not None
            if conversion.status == "refunded":
                raise Conflict("this conversion was already refunded", code="already_refunded")
            await repo.mark_refunded(con, conversion_id, now)
            updated = await repo.get_conversion(con, conversion_id)
        assert updated is not None
        log.info("conversion refunded", extra={"conversion_id": conversion_id})
        return updated
