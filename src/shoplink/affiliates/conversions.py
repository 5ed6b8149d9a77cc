"""Sales reported by a seller's server, credited to the last qualifying click.

A qualifying click is a human click that reached the product page (outcome "redirected"), on a
product of the reporting shop, through a plan, with a commission rate in its snapshot, at most
the attribution window before the sale. The shop identifies the buyer by the click id the
redirect appended (`sl_click`) — whose viewer is then looked up, so the latest click of that
viewer still wins — or directly by the viewer hash. A sale whose click (or viewer) is not stored
yet waits as `pending_attribution` (pending.py settles it). Reports are idempotent by (shop,
order id); refunds may be partial (crediting.py has the money rule).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from shoplink.affiliates import repository as repo
from shoplink.affiliates.crediting import decide, outcome_values, owed_after_refunds
from shoplink.affiliates.models import Conversion
from shoplink.affiliates.service import AffiliateService, parse_time
from shoplink.auth import policy
from shoplink.auth.models import Principal
from shoplink.catalog.service import CatalogService
from shoplink.errors import Conflict, NotFound, field_error
from shoplink.money import MoneyError, is_currency, to_minor

log = logging.getLogger(__name__)

CLOCK_SKEW = timedelta(minutes=5)
MAX_SHOPS = 10_000  # a seller's shops, read at once to list their conversions


@dataclass(frozen=True)
class MoneyRules:
    window: timedelta  # attribution window: how far back a sale looks for its click
    pending: timedelta  # how long a sale waits for a click not stored yet
    return_window: timedelta  # commission pending this long after the sale, then payable


class ConversionService:
    def __init__(self, pool: asyncpg.Pool, *, catalog: CatalogService, plans: AffiliateService,
                 rules: MoneyRules) -> None:
        self._pool = pool
        self._catalog = catalog
        self._plans = plans  # shares its clock
        self.rules = rules

    def now(self) -> datetime:
        return self._plans.now()

    def to_json(self, conversion: Conversion) -> dict[str, Any]:
        return conversion.to_json(self.now(), self.rules.return_window)

    async def report(self, who: Principal, body: dict[str, Any]) -> tuple[Conversion, bool]:
        """(conversion, created). The same order reported again returns the first report."""
        policy.require(who, "conversions.report")
        shop = await self._catalog.get_shop(who, body["shop_id"])  # 404 unless the caller's
        now = self.now()
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
            decision = await decide(con, shop_id=shop.id, click_id=click_id, viewer=viewer,
                                    occurred_at=occurred_at, window=self.rules.window)
            values: dict[str, Any] = {
                "shop_id": shop.id, "order_id": order_id, "amount_minor": amount_minor,
                "currency": currency, "occurred_at": occurred_at, "reported_at": now,
                "reported_by": who.account_id, "given_click_id": click_id, "given_viewer": viewer,
                **outcome_values(decision, amount_minor=amount_minor, refunded_minor=0, now=now,
                                 pending_until=now + self.rules.pending),
            }
            new_id = await repo.insert_conversion(con, values)
            if new_id is None:  # a concurrent report of the same order won
                raced = await repo.get_conversion_by_order(con, shop.id, order_id)
                assert raced is not None
                return self._same_order(raced, amount_minor, currency), False
            conversion = await repo.get_conversion(con, new_id)
        assert conversion is not None
        log.info("conversion reported", extra={"conversion_id": conversion.id, "shop_id": shop.id,
                                               "attribution": conversion.attribution,
                                               "reason": conversion.reason})
        return conversion, True

    @staticmethod
    def _same_order(existing: Conversion, amount_minor: int, currency: str) -> Conversion:
        if existing.amount_minor != amount_minor or existing.currency != currency:
            raise Conflict("this order was already reported with a different amount or currency",
                           code="order_conflict", details={"conversion_id": existing.id})
        return existing

    async def owned(self, who: Principal, conversion_id: int) -> Conversion:
        """A conversion of one of the caller's shops (404 otherwise, 403 without the role)."""
        policy.require(who, "conversions.report")
        async with self._pool.acquire() as con:
            conversion = await repo.get_conversion(con, conversion_id)
        if conversion is None:
            raise NotFound("conversion not found")
        await self._catalog.get_shop(who, conversion.shop_id)  # 404 unless the caller's shop
        return conversion

    async def get(self, who: Principal, conversion_id: int) -> Conversion:
        """The shop's seller, the credited creator, analysts and admins see it; others get 404."""
        async with self._pool.acquire() as con:
            conversion = await repo.get_conversion(con, conversion_id)
        if conversion is None:
            raise NotFound("conversion not found")
        if policy.can_read_all_stats(who):
            return conversion
        if conversion.creator_id is not None and conversion.creator_id == who.account_id:
            return conversion
        if not policy.allowed(who, "conversions.report"):
            raise NotFound("conversion not found")
        await self._catalog.get_shop(who, conversion.shop_id)
        return conversion

    async def refund(self, who: Principal, conversion_id: int,
                     body: dict[str, Any]) -> tuple[Conversion, bool]:
        """Refund `amount` (default: what is left) of a sale; (conversion, refunded now). The
        same `refund_id` again changes nothing. The commission owed is recomputed on what the
        buyer kept (crediting.py); a sale whose commission was paid cannot be refunded here."""
        await self.owned(who, conversion_id)
        now = self.now()
        key: str | None = body.get("refund_id")
        async with self._pool.acquire() as con, con.transaction():
            conversion = await repo.get_conversion(con, conversion_id, for_update=True)
            assert conversion is not None
            if key is not None:
                earlier = await repo.get_refund_by_key(con, conversion_id, key)
                if earlier is not None:
                    if body.get("amount") is not None and earlier["amount_minor"] != \
                            self._amount(body["amount"], conversion.currency):
                        raise Conflict("this refund_id was used with another amount",
                                       code="refund_conflict")
                    return conversion, False
            left = conversion.amount_minor - conversion.refunded_minor
            if conversion.status == "refunded":
                raise Conflict("this conversion was already refunded", code="already_refunded")
            if conversion.payout_id is not None:
                raise Conflict("the commission on this sale was paid out; it cannot be refunded",
                               code="commission_paid", details={"payout_id": conversion.payout_id})
            amount = left if body.get("amount") is None \
                else self._amount(body["amount"], conversion.currency)
            if amount > left:
                raise field_error("amount", f"at most {left} minor units are left to refund",
                                  code="refund_exceeds_sale")
            if amount == 0 and left > 0:
                raise field_error("amount", "must be more than zero")
            refunded = conversion.refunded_minor + amount
            owed = owed_after_refunds(conversion.amount_minor, refunded, conversion.rate_bp) \
                if conversion.click_id is not None else 0
            values: dict[str, Any] = {
                "refunded_minor": refunded, "refunded_at": now,
                "commission_refunded_minor": conversion.commission_minor - owed,
                "status": "refunded" if refunded == conversion.amount_minor else "confirmed"}
            await repo.update_conversion(con, conversion_id, values)
            await repo.insert_refund(con, conversion_id=conversion_id, key=key,
                                     amount_minor=amount, at=now, by=who.account_id)
            updated = await repo.get_conversion(con, conversion_id)
        assert updated is not None
        log.info("conversion refunded", extra={"conversion_id": conversion_id,
                                               "amount_minor": amount})
        return updated, True

    @staticmethod
    def _amount(raw: Any, currency: str) -> int:
        try:
            return to_minor(raw, currency)
        except MoneyError as exc:
            raise field_error("amount", str(exc)) from None

    async def list_visible(self, who: Principal, *, plan_id: int | None, attribution: str | None,
                   after_id: int, limit: int) -> list[Conversion]:
        """The sales of the caller's shops (a seller) and those credited to the caller (a
        creator); all for analysts and admins. Oldest first."""
        policy.require(who, "stats.read")
        shop_ids: list[int] | None = None
        creator_id: int | None = None
        if not policy.can_read_all_stats(who):
            creator_id = who.account_id
            shop_ids = []
            if policy.allowed(who, "conversions.report"):
                shop_ids = [shop.id for shop in await self._catalog.list_shops(who, MAX_SHOPS, 0)]
        async with self._pool.acquire() as con:
            return await repo.list_conversions(con, shop_ids=shop_ids, creator_id=creator_id,
                                               plan_id=plan_id, attribution=attribution,
                                               after_id=after_id, limit=limit)
