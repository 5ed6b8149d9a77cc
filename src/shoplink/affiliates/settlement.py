"""Settlement of commissions: freezes, payouts, and what a seller owes each creator.

A credited sale's commission is `pending` for the return window after the sale, then `payable`;
the seller records a payout (`paid`, with the seller's reference), which takes every payable sale
of the seller's plans for one creator and currency at once. A seller may `freeze` a sale for
review (with a reason) and `unfreeze` it; frozen sales are not paid. Rules (docs/affiliates.md):

* a sale is paid at most once: the payout marks rows still unpaid, locked, in one transaction,
  and the same reference again is the same payout (200, nothing paid twice);
* never on a refunded part: the payout pays the commission owed (net of refunds), and a paid sale
  can no longer be refunded;
* only the seller whose plan credited the sale acts on it; anyone else gets 404, a creator 403.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import asyncpg

from shoplink.affiliates import repository as repo
from shoplink.affiliates.conversions import ConversionService
from shoplink.affiliates.models import Conversion, Payout
from shoplink.auth import policy
from shoplink.auth.models import Principal
from shoplink.errors import Conflict, NotFound, field_error
from shoplink.money import is_currency

log = logging.getLogger(__name__)


class SettlementService:
    def __init__(self, pool: asyncpg.Pool, *, conversions: ConversionService) -> None:
        self._pool = pool
        self._conversions = conversions

    def now(self) -> datetime:
        return self._conversions.now()

    async def _hold(self, who: Principal, conversion_id: int, action: str,
                    reason: str) -> Conversion:
        await self._conversions.owned(who, conversion_id)  # the shop's seller only
        now = self.now()
        async with self._pool.acquire() as con, con.transaction():
            conversion = await repo.get_conversion(con, conversion_id, for_update=True)
            assert conversion is not None
            state = conversion.settlement_state(now, self._conversions.rules.return_window)
            if action == "freeze":
                if state not in ("pending", "payable"):
                    raise Conflict(f"a {state or conversion.attribution} sale cannot be frozen",
                                   code="illegal_transition", details={"state": state})
                values: dict[str, Any] = {"frozen_at": now, "frozen_reason": reason}
            else:
                if state != "frozen":
                    raise Conflict(f"a {state or conversion.attribution} sale is not frozen",
                                   code="illegal_transition", details={"state": state})
                values = {"frozen_at": None, "frozen_reason": None}
            await repo.update_conversion(con, conversion_id, values)
            await repo.insert_hold(con, conversion_id=conversion_id, action=action, reason=reason,
                                   at=now, by=who.account_id)
            updated = await repo.get_conversion(con, conversion_id)
        assert updated is not None
        log.info("conversion %sd", action, extra={"conversion_id": conversion_id})
        return updated

    async def freeze(self, who: Principal, conversion_id: int, reason: str) -> Conversion:
        return await self._hold(who, conversion_id, "freeze", _reason(reason))

    async def unfreeze(self, who: Principal, conversion_id: int, reason: str) -> Conversion:
        return await self._hold(who, conversion_id, "unfreeze", _reason(reason))

    async def pay(self, who: Principal, body: dict[str, Any]) -> tuple[Payout, bool]:
        """Record that the seller paid a creator everything payable in one currency;
        (payout, created). The same reference again answers the first payout."""
        policy.require(who, "conversions.report")
        creator_id: int = body["creator_id"]
        currency: str = body["currency"]
        reference = body["reference"].strip()
        if not reference:
            raise field_error("reference", "must not be blank")
        if not is_currency(currency):
            raise field_error("currency", f"{currency} is not a supported ISO 4217 currency")
        seller_id = who.account_id
        now = self.now()
        async with self._pool.acquire() as con, con.transaction():
            earlier = await repo.get_payout_by_reference(con, seller_id, reference)
            if earlier is not None:
                return self._same_payout(earlier, creator_id, currency), False
            rows = await repo.lock_payable(
                con, seller_id=seller_id, creator_id=creator_id, currency=currency,
                due_before=now - self._conversions.rules.return_window)
            owed = [(cid, amount) for cid, amount in rows if amount > 0]
            total = sum(amount for _, amount in owed)
            if not owed:
                raise Conflict(f"nothing is payable to creator {creator_id} in {currency}",
                               code="nothing_payable")
            payout_id = await repo.insert_payout(
                con, seller_id=seller_id, creator_id=creator_id, currency=currency,
                amount_minor=total, conversions=len(owed), reference=reference, paid_at=now,
                recorded_by=who.account_id)
            if payout_id is None:  # the same reference, recorded concurrently
                raced = await repo.get_payout_by_reference(con, seller_id, reference)
                assert raced is not None
                return self._same_payout(raced, creator_id, currency), False
            await repo.mark_paid(con, [cid for cid, _ in owed], payout_id)
            payout = await repo.get_payout(con, payout_id)
        assert payout is not None
        log.info("payout recorded", extra={"payout_id": payout.id, "conversions": len(owed)})
        return payout, True

    @staticmethod
    def _same_payout(earlier: Payout, creator_id: int, currency: str) -> Payout:
        if earlier.creator_id != creator_id or earlier.currency != currency:
            raise Conflict("this reference was used for another payout",
                           code="reference_conflict", details={"payout_id": earlier.id})
        return earlier

    async def get_payout(self, who: Principal, payout_id: int) -> Payout:
        """The seller who paid, the creator paid, analysts and admins; 404 for anyone else."""
        policy.require(who, "stats.read")
        async with self._pool.acquire() as con:
            payout = await repo.get_payout(con, payout_id)
        if payout is None or not (policy.can_read_all_stats(who)
                                  or who.account_id in (payout.seller_id, payout.creator_id)):
            raise NotFound("payout not found")
        return payout


def _reason(raw: str) -> str:
    reason = raw.strip()
    if not reason:
        raise field_error("reason", "must not be blank")
    return reason
