"""Promotion plans, creator enrolment, and the commission terms in force (for anchors and clicks).

All times come from `self.now` (a callable returning an aware UTC datetime) so that tests can
move the clock; nothing here reads the wall clock directly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import asyncpg

from shoplink.affiliates import repository as repo
from shoplink.affiliates.models import CommissionTerms, Enrolment, Plan, PlanDetail, RateChange
from shoplink.affiliates.terms import in_force, plan_json, product_rate, terms_at
from shoplink.auth import policy
from shoplink.auth.models import Principal
from shoplink.cache import InvalidatingCache
from shoplink.catalog.models import Product
from shoplink.catalog.service import CatalogService
from shoplink.changes import Change, ChangeBus
from shoplink.db import Conn
from shoplink.errors import Conflict, Forbidden, NotFound, field_error
from shoplink.times import parse_datetime

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
TERMS_CACHE_TTL_S = 60.0
TERMS_CACHE_MAX = 50_000
MAX_PLAN_PRODUCTS = 500


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RateRules:
    min_bp: int
    max_bp: int
    notice: timedelta


def parse_rate(raw: Any, field: str, rules: RateRules) -> int:
    """'12.50' (percent, at most two decimals) -> 1250 basis points, within the allowed range."""
    try:
        value = Decimal(str(raw))
    except InvalidOperation:
        raise field_error(field, "must be a percentage such as \"12.50\"") from None
    bp = value * 100
    if not value.is_finite() or bp != bp.to_integral_value():
        raise field_error(field, "must be a percentage with at most two decimals")
    rate_bp = int(bp)
    if not rules.min_bp <= rate_bp <= rules.max_bp:
        raise field_error(field, f"must be between {rules.min_bp / 100:.2f} and "
                                 f"{rules.max_bp / 100:.2f} percent", code="out_of_range")
    return rate_bp


def parse_time(raw: str, field: str) -> datetime:
    try:
        value = parse_datetime(raw)
    except ValueError:
        raise field_error(field, "must be an ISO 8601 date-time such as 2025-01-31T12:00:00Z") \
            from None
    if value.tzinfo is None:
        raise field_error(field, "must carry a time zone (e.g. Z or +01:00)")
    return value.astimezone(UTC)


TermsKey = tuple[int, int, int | None]  # plan, product, creator


@dataclass
class _CachedTerms:
    terms: CommissionTerms
    from_ms: int
    expires: float


class AffiliateService:
    def __init__(self, pool: asyncpg.Pool, *, catalog: CatalogService, rules: RateRules,
                 changes: ChangeBus | None = None, now: Clock = utc_now) -> None:
        self._pool = pool
        self._catalog = catalog
        self.rules = rules
        self._changes = changes or ChangeBus()
        self.now = now
        # (plan, product, creator) -> terms; a change of the plan drops its entries.
        self._terms: InvalidatingCache[TermsKey, _CachedTerms] = InvalidatingCache(
            TERMS_CACHE_MAX, lambda key, _: (("plan", key[0]),))

    # ---- cache of terms (the click resolver asks on every click) -----------------------------

    def on_change(self, change: Change) -> None:
        """Change-bus listener: drop cached terms of a changed plan (everything on "*")."""
        if change.is_everything or change.kind == "plan":
            self._terms.on_change(change)

    async def _notify(self, plan_id: int) -> None:
        await self._changes.publish(Change("plan", plan_id))

    async def terms_lookup(self, plan_id: int, product_id: int, at_ms: int,
                           creator_id: int | None = None) -> CommissionTerms:
        """The commission a click at `at_ms` earns on `product_id` through `plan_id`.

        Pass the anchor's publisher as `creator_id`: then a creator who is not (or no longer)
        enrolled gets `not_enrolled`, and a rate cut announced before they joined applies to them
        at once. Without it, enrolment is not checked and the already-enrolled schedule applies.
        Served from an in-process cache that plan changes invalidate, bounded by a TTL.
        """
        key = (plan_id, product_id, creator_id)
        hit = self._terms.get(key)
        if hit is not None and hit.expires > time.monotonic() and hit.from_ms <= at_ms and (
                hit.terms.valid_until_ms is None or at_ms < hit.terms.valid_until_ms):
            return hit.terms
        at = datetime.fromtimestamp(at_ms / 1000, UTC)
        with self._terms.loading() as load:  # a plan change that arrives meanwhile keeps it out
            async with self._pool.acquire() as con:
                detail = await repo.get_plan_detail(con, plan_id)
                enrolment = (await repo.get_enrolment(con, plan_id, creator_id)
                             if creator_id is not None else None)
            terms = terms_at(detail, product_id, at, enrolment, check_enrolment=creator_id is not None)
            load.store(key, _CachedTerms(terms, at_ms, time.monotonic() + TERMS_CACHE_TTL_S))
        return terms

    async def plan_owner(self, plan_id: int) -> int | None:
        """The seller who owns a plan (for other domains' authorization), or None."""
        async with self._pool.acquire() as con:
            plan = await repo.get_plan(con, plan_id)
        return plan.seller_id if plan else None

    async def plan_lookup(self, creator_id: int, product: Product) -> int | None:
        """For PromotionRights: an active plan carrying `product` that the creator joined."""
        async with self._pool.acquire() as con:
            plan_ids = await repo.plans_for_creator_product(con, creator_id, product.id, self.now())
        return plan_ids[0] if plan_ids else None

    # ---- plans -------------------------------------------------------------------------------

    async def _detail(self, con: Conn, plan_id: int) -> PlanDetail:
        detail = await repo.get_plan_detail(con, plan_id)
        if detail is None:
            raise NotFound("plan not found")
        return detail

    async def _owned_plan(self, con: Conn, who: Principal, plan_id: int) -> Plan:
        """The plan, locked for update, if the caller manages it (404 otherwise)."""
        policy.require(who, "plans.manage")
        plan = await repo.get_plan(con, plan_id, for_update=True)
        if plan is None:
            raise NotFound("plan not found")
        policy.require_owner(who, plan.seller_id, "plan")
        return plan

    async def _check_products(self, who: Principal, entries: Sequence[dict[str, Any]],
                              seller_id: int | None, field: str = "products") -> tuple[int, list[int]]:
        """(seller id, product ids): every product exists, is active and belongs to one seller,
        the caller (admins may build a plan for any one seller)."""
        ids = [int(e["product_id"]) for e in entries]
        seen: set[int] = set()
        for i, pid in enumerate(ids):
            if pid in seen:
                raise field_error(f"{field}.{i}.product_id", "is listed twice", code="duplicate")
            seen.add(pid)
        products = {p.id: p for p in await self._catalog.products_by_ids(ids)}
        owner = seller_id
        for i, pid in enumerate(ids):
            product = products.get(pid)
            if product is not None and owner is None:
                owner = product.owner_id if who.is_admin else who.account_id
            if product is None or product.owner_id != owner:
                raise field_error(f"{field}.{i}.product_id",
                                  "no such product among the seller's shops", code="not_your_product")
            if not product.active:
                raise field_error(f"{field}.{i}.product_id", "product is delisted",
                                  code="product_delisted")
        assert owner is not None
        return owner, ids

    async def create_plan(self, who: Principal, body: dict[str, Any]) -> dict[str, Any]:
        policy.require(who, "plans.manage")
        now = self.now()
        rate_bp = parse_rate(body["rate"], "rate", self.rules)
        starts_at = parse_time(body["starts_at"], "starts_at") if body.get("starts_at") else now
        ends_at = parse_time(body["ends_at"], "ends_at") if body.get("ends_at") else None
        self._check_end(starts_at, ends_at, now)
        entries = body["products"]
        overrides = {int(e["product_id"]): parse_rate(e["rate"], f"products.{i}.rate", self.rules)
                     for i, e in enumerate(entries) if e.get("rate") is not None}
        seller_id, product_ids = await self._check_products(who, entries, None)
        async with self._pool.acquire() as con, con.transaction():
            plan_id = await repo.insert_plan(con, seller_id=seller_id, name=body["name"].strip(),
                                             kind=body["kind"], starts_at=starts_at,
                                             ends_at=ends_at, now=now)
            await repo.add_plan_products(con, plan_id, product_ids, now)
            await repo.insert_rate_change(con, plan_id=plan_id, product_id=None, rate_bp=rate_bp,
                                          announced_at=now, effective_at=now,
                                          changed_by=who.account_id)
            for product_id, override in overrides.items():
                await repo.insert_rate_change(con, plan_id=plan_id, product_id=product_id,
                                              rate_bp=override, announced_at=now, effective_at=now,
                                              changed_by=who.account_id)
            detail = await self._detail(con, plan_id)
        log.info("plan created", extra={"plan_id": plan_id, "seller_id": seller_id})
        await self._notify(plan_id)
        return plan_json(detail, now)

    @staticmethod
    def _check_end(starts_at: datetime, ends_at: datetime | None, now: datetime) -> None:
        if ends_at is None:
            return
        if ends_at <= starts_at:
            raise field_error("ends_at", "must be after starts_at", code="end_before_start")
        if ends_at <= now:
            raise field_error("ends_at", "must be in the future", code="end_in_past")

    async def _visible_detail(self, con: Conn, who: Principal, plan_id: int) -> PlanDetail:
        """Managers see their plans; creators see open plans and plans they were invited to."""
        detail = await self._detail(con, plan_id)
        plan = detail.plan
        if policy.owns(who, plan.seller_id) or policy.can_read_all_stats(who):
            return detail
        if plan.kind == "open" and policy.allowed(who, "plans.join"):
            return detail
        if await repo.get_enrolment(con, plan_id, who.account_id) is not None:
            return detail
        raise NotFound("plan not found")

    async def get_plan(self, who: Principal, plan_id: int) -> dict[str, Any]:
        async with self._pool.acquire() as con:
            detail = await self._visible_detail(con, who, plan_id)
            enrolment = await repo.get_enrolment(con, plan_id, who.account_id)
        body = plan_json(detail, self.now())
        body["my_enrolment"] = enrolment.to_json() if enrolment else None
        return body

    async def list_plans(self, who: Principal, limit: int, after_id: int) -> list[dict[str, Any]]:
        policy.require(who, "plans.manage")
        seller = None if who.is_admin else who.account_id
        async with self._pool.acquire() as con:
            ids = await repo.list_plan_ids(con, seller_id=seller, limit=limit, after_id=after_id)
            details = await repo.get_plan_details(con, ids)
        now = self.now()
        return [plan_json(d, now) for d in details]

    async def update_plan(self, who: Principal, plan_id: int, body: dict[str, Any]) -> dict[str, Any]:
        now = self.now()
        async with self._pool.acquire() as con, con.transaction():
            plan = await self._owned_plan(con, who, plan_id)
            if plan.state_at(now) == "ended":
                raise Conflict("the plan has ended and can no longer be changed", code="plan_ended")
            changes: dict[str, Any] = {}
            if "name" in body:
                changes["name"] = body["name"].strip()
            if "ends_at" in body:
                ends_at = parse_time(body["ends_at"], "ends_at") if body["ends_at"] else None
                self._check_end(plan.starts_at, ends_at, now)
                changes["ends_at"] = ends_at
            await repo.update_plan(con, plan_id, changes, now)
            detail = await self._detail(con, plan_id)
        await self._notify(plan_id)
        return plan_json(detail, now)

    async def add_product(self, who: Principal, plan_id: int, body: dict[str, Any]) -> dict[str, Any]:
        now = self.now()
        async with self._pool.acquire() as con, con.transaction():
            plan = await self._owned_plan(con, who, plan_id)
            if plan.state_at(now) == "ended":
                raise Conflict("the plan has ended", code="plan_ended")
            override = (parse_rate(body["rate"], "rate", self.rules)
                        if body.get("rate") is not None else None)
            _, ids = await self._check_products(who, [body], plan.seller_id, field="body")
            await repo.add_plan_products(con, plan_id, ids, now)
            if override is not None:
                await repo.insert_rate_change(con, plan_id=plan_id, product_id=ids[0],
                                              rate_bp=override, announced_at=now, effective_at=now,
                                              changed_by=who.account_id)
            detail = await self._detail(con, plan_id)
        await self._notify(plan_id)
        return plan_json(detail, now)

    async def change_rate(self, who: Principal, plan_id: int, body: dict[str, Any]) -> RateChange:
        """A new plan rate or product override. Raises apply at once; a cut reaches creators
        enrolled before this announcement only after the notice period."""
        now = self.now()
        product_id: int | None = body.get("product_id")
        async with self._pool.acquire() as con, con.transaction():
            plan = await self._owned_plan(con, who, plan_id)
            if plan.state_at(now) == "ended":
                raise Conflict("the plan has ended", code="plan_ended")
            detail = await self._detail(con, plan_id)
            raw = body.get("rate")
            if product_id is None:
                if raw is None:
                    raise field_error("rate", "the plan rate cannot be removed; send a percentage")
                new_bp: int | None = parse_rate(raw, "rate", self.rules)
                current = in_force(detail.changes, None, now, None)
                compare_old = current.rate_bp if current else None
                compare_new = new_bp
            else:
                if all(p.product_id != product_id for p in detail.products):
                    raise field_error("product_id", "this product is not part of the plan",
                                      code="not_in_plan")
                new_bp = parse_rate(raw, "rate", self.rules) if raw is not None else None
                compare_old, _ = product_rate(detail.changes, product_id, now, None)
                plan_rate = in_force(detail.changes, None, now, None)
                compare_new = new_bp if new_bp is not None else (
                    plan_rate.rate_bp if plan_rate else None)
            is_cut = compare_old is not None and compare_new is not None and compare_new < compare_old
            effective_at = now + self.rules.notice if is_cut else now
            await repo.insert_rate_change(con, plan_id=plan_id, product_id=product_id,
                                          rate_bp=new_bp, announced_at=now,
                                          effective_at=effective_at, changed_by=who.account_id)
            await repo.update_plan(con, plan_id, {}, now)
            detail = await self._detail(con, plan_id)
        await self._notify(plan_id)
        log.info("plan rate changed", extra={"plan_id": plan_id, "product_id": product_id,
                                             "rate_bp": new_bp, "cut": is_cut})
        return max(detail.changes, key=lambda c: (c.announced_at, c.id))

    async def rate_history(self, who: Principal, plan_id: int) -> list[RateChange]:
        async with self._pool.acquire() as con:
            detail = await self._visible_detail(con, who, plan_id)
        return list(detail.changes)

    async def transition(self, who: Principal, plan_id: int, action: str) -> dict[str, Any]:
        """pause (active|scheduled -> paused), resume (paused -> active), end (any but ended)."""
        now = self.now()
        async with self._pool.acquire() as con, con.transaction():
            plan = await self._owned_plan(con, who, plan_id)
            state = plan.state_at(now)
            changes: dict[str, Any]
            if state == "ended":
                raise Conflict(f"cannot {action}: the plan has ended", code="illegal_transition")
            if action == "pause":
                if state == "paused":
                    raise Conflict("the plan is already paused", code="illegal_transition")
                changes = {"status": "paused", "paused_at": now}
            elif action == "resume":
                if state != "paused":
                    raise Conflict("only a paused plan can be resumed", code="illegal_transition")
                changes = {"status": "active", "paused_at": None}
            elif action == "end":
                changes = {"status": "ended", "ended_at": now}
            else:  # pragma: no cover - views only pass the three actions
                raise NotFound(f"unknown action {action}")
            await repo.update_plan(con, plan_id, changes, now)
            detail = await self._detail(con, plan_id)
        await self._notify(plan_id)
        log.info("plan state changed", extra={"plan_id": plan_id, "action": action})
        return plan_json(detail, now)

    # ---- marketplace and enrolment -----------------------------------------------------------

    async def marketplace(self, who: Principal, *, shop_id: int | None, product_id: int | None,
                          min_rate_bp: int | None, limit: int,
                          after_id: int) -> tuple[list[dict[str, Any]], int | None]:
        """Open plans a creator can join; (items, next_after) — filters may leave a page short."""
        policy.require(who, "plans.join")
        now = self.now()
        async with self._pool.acquire() as con:
            ids = await repo.marketplace_plan_ids(con, now=now, shop_id=shop_id,
                                                  product_id=product_id, limit=limit,
                                                  after_id=after_id)
            details = await repo.get_plan_details(con, ids)
            mine = {e.plan_id: e for e in await repo.list_creator_enrolments(
                con, who.account_id, ("invited", "declined", "enrolled", "left"))}
        items = []
        for detail in details:
            best = max((product_rate(detail.changes, p.product_id, now, now)[0] or 0
                        for p in detail.products), default=0)
            if min_rate_bp is not None and best < min_rate_bp:
                continue
            body = plan_json(detail, now)
            body["best_rate_bp"] = best
            enrolment = mine.get(detail.plan.id)
            body["my_enrolment"] = enrolment.to_json() if enrolment else None
            items.append(body)
        next_after = ids[-1] if len(ids) == limit else None
        return items, next_after

    async def invite(self, who: Principal, plan_id: int, creator_id: int) -> Enrolment:
        now = self.now()
        async with self._pool.acquire() as con, con.transaction():
            plan = await self._owned_plan(con, who, plan_id)
            if plan.kind != "targeted":
                raise Conflict("open plans take no invitations: any creator may join",
                               code="plan_open")
            if plan.state_at(now) == "ended":
                raise Conflict("the plan has ended", code="plan_ended")
            current = await repo.get_enrolment(con, plan_id, creator_id, for_update=True)
            if current is not None and current.status == "enrolled":
                raise Conflict("the creator is already enrolled", code="already_enrolled")
            if current is not None and current.status == "invited":
                return current
            enrolment = Enrolment(plan_id, creator_id, "invited", now,
                                  current.joined_at if current else None,
                                  current.left_at if current else None, now)
            try:
                await repo.save_enrolment(con, enrolment)
            except asyncpg.ForeignKeyViolationError:
                raise field_error("creator_id", "no such account") from None
        await self._notify(plan_id)
        return enrolment

    async def list_enrolments(self, who: Principal, plan_id: int) -> list[Enrolment]:
        async with self._pool.acquire() as con:
            await self._owned_plan(con, who, plan_id)
            return await repo.list_plan_enrolments(con, plan_id)

    async def my_enrolments(self, who: Principal, statuses: Sequence[str]) -> list[dict[str, Any]]:
        policy.require(who, "plans.join")
        now = self.now()
        async with self._pool.acquire() as con:
            enrolments = await repo.list_creator_enrolments(con, who.account_id, statuses)
            details = {d.plan.id: d for d in await repo.get_plan_details(
                con, [e.plan_id for e in enrolments])}
        return [{**e.to_json(), "plan": plan_json(details[e.plan_id], now)}
                for e in enrolments if e.plan_id in details]

    async def _enrolment_step(self, who: Principal, plan_id: int, action: str) -> Enrolment:
        policy.require(who, "plans.join")
        now = self.now()
        async with self._pool.acquire() as con, con.transaction():
            plan = await repo.get_plan(con, plan_id, for_update=True)
            current = await repo.get_enrolment(con, plan_id, who.account_id, for_update=True)
            if plan is None or (plan.kind == "targeted" and current is None and action != "join"):
                raise NotFound("plan not found")
            state = plan.state_at(now)
            status = current.status if current else None
            if action in ("join", "accept"):
                if status == "enrolled":
                    raise Conflict("you are already enrolled in this plan", code="already_enrolled")
                if plan.kind == "targeted" and status != "invited":
                    raise Forbidden("this plan is by invitation only", code="invitation_required")
                if state in ("ended", "paused"):
                    raise Conflict(f"the plan is {state}; it cannot be joined now",
                                   code=f"plan_{state}")
                new = Enrolment(plan_id, who.account_id, "enrolled",
                                current.invited_at if current else None, now, None, now)
            elif action == "decline":
                if status != "invited":
                    raise Conflict("there is no pending invitation to decline",
                                   code="no_invitation")
                assert current is not None
                new = replace(current, status="declined", updated_at=now)
            else:  # leave
                if status != "enrolled":
                    raise Conflict("you are not enrolled in this plan", code="not_enrolled")
                assert current is not None
                new = replace(current, status="left", left_at=now, updated_at=now)
            await repo.save_enrolment(con, new)
        log.info("enrolment changed", extra={"plan_id": plan_id, "creator_id": who.account_id,
                                             "action": action})
        await self._notify(plan_id)
        return new

    async def join(self, who: Principal, plan_id: int) -> Enrolment:
        return await self._enrolment_step(who, plan_id, "join")

    async def accept(self, who: Principal, plan_id: int) -> Enrolment:
        return await self._enrolment_step(who, plan_id, "accept")

    async def decline(self, who: Principal, plan_id: int) -> Enrolment:
        return await self._enrolment_step(who, plan_id, "decline")

    async def leave(self, who: Principal, plan_id: int) -> Enrolment:
        return await self._enrolment_step(who, plan_id, "leave")
