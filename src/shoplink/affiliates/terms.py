"""Which commission rate is in force, for whom, and when: pure functions over a plan's history.

Every rate a plan or product override ever had is a `RateChange` with `announced_at` and
`effective_at`. A raise is effective when announced. A cut is effective only after the notice
period for creators who were enrolled before it was announced; a creator who joined after the
announcement saw the new terms, so it applies to them at once. At a moment `at`, a change
applies to a creator when it was announced by then and it is effective (or they joined after
it was announced); among the changes that apply, the most recently announced one wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from shoplink.affiliates.models import (
    CommissionTerms,
    Enrolment,
    Plan,
    PlanDetail,
    RateChange,
    rate_string,
)


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _applies(change: RateChange, at: datetime, joined_at: datetime | None) -> bool:
    if change.announced_at > at:
        return False
    return change.effective_at <= at or (joined_at is not None and joined_at >= change.announced_at)


def in_force(changes: Iterable[RateChange], product_id: int | None, at: datetime,
             joined_at: datetime | None) -> RateChange | None:
    """The change of one scope (plan rate: product_id None) in force at `at` for a creator who
    joined at `joined_at` (None: enrolled before every change, the conservative schedule)."""
    best: RateChange | None = None
    for change in changes:
        if change.product_id != product_id or not _applies(change, at, joined_at):
            continue
        if best is None or (change.announced_at, change.id) > (best.announced_at, best.id):
            best = change
    return best


def announced_rate(changes: Iterable[RateChange], product_id: int | None) -> int | None:
    """The latest announced rate of a scope (what new joiners get)."""
    latest: RateChange | None = None
    for change in changes:
        if change.product_id == product_id and (
                latest is None or (change.announced_at, change.id) > (latest.announced_at, latest.id)):
            latest = change
    return latest.rate_bp if latest else None


def product_rate(changes: Sequence[RateChange], product_id: int, at: datetime,
                 joined_at: datetime | None) -> tuple[int | None, str]:
    """(rate, source) for one product: its override when one is in force, else the plan rate."""
    override = in_force(changes, product_id, at, joined_at)
    if override is not None and override.rate_bp is not None:
        return override.rate_bp, "product_override"
    plan_rate = in_force(changes, None, at, joined_at)
    return (plan_rate.rate_bp if plan_rate else None), "plan_rate"


def terms_at(detail: PlanDetail | None, product_id: int, at: datetime,
             enrolment: Enrolment | None, *, check_enrolment: bool) -> CommissionTerms:
    """The commission a click at `at` on `product_id` through this plan earns."""
    if detail is None:
        return CommissionTerms(None, "plan_unknown", None)
    plan = detail.plan
    if all(p.product_id != product_id for p in detail.products):
        return CommissionTerms(None, "product_not_in_plan", None)
    state = plan.state_at(at)
    if state == "ended":
        return CommissionTerms(None, "plan_ended", None)
    end_ms = _ms(plan.ends_at) if plan.ends_at is not None else None
    if state == "paused":
        return CommissionTerms(None, "plan_paused", end_ms)
    if state == "scheduled":
        return CommissionTerms(None, "plan_not_started", _ms(plan.starts_at))
    joined_at: datetime | None = None
    if check_enrolment:
        if enrolment is None or enrolment.status != "enrolled" or (
                enrolment.joined_at is not None and enrolment.joined_at > at):
            return CommissionTerms(None, "not_enrolled", None)
        joined_at = enrolment.joined_at
    rate, source = product_rate(detail.changes, product_id, at, joined_at)
    if rate is None:
        return CommissionTerms(None, "plan_unknown", None)
    return CommissionTerms(rate, source, _valid_until(detail, product_id, at, joined_at, end_ms))


def _valid_until(detail: PlanDetail, product_id: int, at: datetime, joined_at: datetime | None,
                 end_ms: int | None) -> int | None:
    """The next moment the terms change by themselves: a pending change or the plan's end."""
    moments = [end_ms] if end_ms is not None else []
    for change in detail.changes:
        if change.product_id in (None, product_id) and change.announced_at <= at \
                and not _applies(change, at, joined_at):
            moments.append(_ms(change.effective_at))
    return min(moments) if moments else None


def plan_json(detail: PlanDetail, at: datetime) -> dict[str, Any]:
    plan: Plan = detail.plan
    plan_rate = announced_rate(detail.changes, None)
    plan_in_force = in_force(detail.changes, None, at, None)
    products = []
    for p in detail.products:
        override = announced_rate(detail.changes, p.product_id)
        products.append({"product_id": p.product_id, "shop_id": p.shop_id, "title": p.title,
                         "override_rate_bp": override, "override_rate": rate_string(override)})
    pending = [c.to_json() for c in detail.changes if c.announced_at <= at < c.effective_at]

    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": plan.id, "seller_id": plan.seller_id, "name": plan.name, "kind": plan.kind,
        "status": plan.state_at(at), "starts_at": plan.starts_at.isoformat(),
        "ends_at": iso(plan.ends_at), "paused_at": iso(plan.paused_at),
        "ended_at": iso(plan.ended_at),
        "rate_bp": plan_rate, "rate": rate_string(plan_rate),
        "rate_in_force_bp": plan_in_force.rate_bp if plan_in_force else None,
        "products": products, "pending_rate_changes": pending,
        "created_at": plan.created_at.isoformat(), "updated_at": plan.updated_at.isoformat(),
    }
