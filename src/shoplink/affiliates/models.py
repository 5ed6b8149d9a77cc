"""Affiliate program values: plans, rate changes, enrolments, commission terms, conversions."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shoplink.money import to_decimal_string


def rate_string(rate_bp: int | None) -> str | None:
    """1250 -> '12.50' (a percentage with two decimals)."""
    if rate_bp is None:
        return None
    whole, frac = divmod(rate_bp, 100)
    return f"{whole}.{frac:02d}"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass(frozen=True)
class CommissionTerms:
    """What a click earns: the rate in force (None: no commission) and why.

    `source` is "plan_rate" or "product_override" when a rate applies, otherwise the reason none
    does ("plan_ended", "plan_paused", "plan_not_started", "not_enrolled", "plan_unknown",
    "product_not_in_plan"). `valid_until_ms` is when these terms may next change on their own
    (a pending rate cut taking effect, the plan's end); None when only an edit can change them.
    """

    rate_bp: int | None
    source: str
    valid_until_ms: int | None = None

    def snapshot(self) -> dict[str, Any]:
        """The `commission` object of a click event."""
        return {"rate_bp": self.rate_bp, "source": self.source}


@dataclass(frozen=True)
class RateChange:
    id: int
    plan_id: int
    product_id: int | None  # None: the plan rate
    rate_bp: int | None  # None: a product override removed
    announced_at: datetime
    effective_at: datetime
    changed_by: int | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "product_id": self.product_id, "rate_bp": self.rate_bp,
                "rate": rate_string(self.rate_bp), "announced_at": self.announced_at.isoformat(),
                "effective_at": self.effective_at.isoformat(),
                "kind": "raise_or_same" if self.effective_at == self.announced_at else "cut"}


@dataclass(frozen=True)
class Plan:
    id: int
    seller_id: int
    name: str
    kind: str  # open | targeted
    status: str  # stored: active | paused | ended
    starts_at: datetime
    ends_at: datetime | None
    paused_at: datetime | None
    ended_at: datetime | None
    created_at: datetime
    updated_at: datetime

    def state_at(self, at: datetime) -> str:
        """scheduled | active | paused | ended, at a moment (the end date ends a plan by itself)."""
        if self.status == "ended" or (self.ends_at is not None and at >= self.ends_at):
            return "ended"
        if self.status == "paused":
            return "paused"
        if at < self.starts_at:
            return "scheduled"
        return "active"


@dataclass(frozen=True)
class PlanProduct:
    product_id: int
    shop_id: int
    title: str


@dataclass(frozen=True)
class PlanDetail:
    """A plan with its products and rate history, as the service reads it in one go."""

    plan: Plan
    products: tuple[PlanProduct, ...]
    changes: tuple[RateChange, ...]


@dataclass(frozen=True)
class Enrolment:
    plan_id: int
    creator_id: int
    status: str  # invited | declined | enrolled | left
    invited_at: datetime | None
    joined_at: datetime | None
    left_at: datetime | None
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"plan_id": self.plan_id, "creator_id": self.creator_id, "status": self.status,
                "invited_at": _iso(self.invited_at), "joined_at": _iso(self.joined_at),
                "left_at": _iso(self.left_at), "updated_at": self.updated_at.isoformat()}


@dataclass(frozen=True)
class AttributedClick:
    """A click on a plan anchor, as the attribution consumer stores it."""

    event_id: str
    ts: datetime
    code: str
    outcome: str
    surface: str
    anchor_id: int | None
    plan_id: int
    creator_id: int | None
    product_id: int | None
    shop_id: int | None
    viewer: str
    ua_class: str
    rate_bp: int | None
    rate_source: str | None


PENDING_ATTRIBUTION = "pending_attribution"


@dataclass(frozen=True)
class Conversion:
    """A reported sale. Amounts in minor units of `currency`.

    `commission_minor` is the commission on the whole sale at the credited click's rate;
    `commission_refunded_minor` the part of it that refunds took back, so the commission owed is
    their difference (docs/affiliates.md, "Money rules").
    """

    id: int
    shop_id: int
    order_id: str
    amount_minor: int
    currency: str
    occurred_at: datetime
    reported_at: datetime
    given_click_id: str | None
    given_viewer: str | None
    click_id: str | None
    plan_id: int | None
    creator_id: int | None
    product_id: int | None
    rate_bp: int | None
    rate_source: str | None
    commission_minor: int
    reason: str
    status: str  # confirmed | refunded (wholly)
    refunded_at: datetime | None
    refunded_minor: int
    commission_refunded_minor: int
    pending_until: datetime | None
    attributed_at: datetime | None
    frozen_at: datetime | None
    frozen_reason: str | None
    payout_id: int | None

    @property
    def net_amount_minor(self) -> int:
        return self.amount_minor - self.refunded_minor

    @property
    def commission_owed_minor(self) -> int:
        return self.commission_minor - self.commission_refunded_minor

    @property
    def attribution(self) -> str:
        if self.click_id is not None:
            return "attributed"
        return "pending" if self.reason == PENDING_ATTRIBUTION else "unattributed"

    def settlement_state(self, now: datetime, return_window: timedelta) -> str | None:
        """None for a sale credited to nobody (yet); else paid | refunded | frozen | pending |
        payable (the same rule as repository.SETTLEMENT_STATE_SQL)."""
        if self.click_id is None:
            return None
        if self.payout_id is not None:
            return "paid"
        if self.status == "refunded":
            return "refunded"
        if self.frozen_at is not None:
            return "frozen"
        if now < self.occurred_at + return_window:
            return "pending"
        return "payable"

    def to_json(self, now: datetime, return_window: timedelta) -> dict[str, Any]:
        money = functools.partial(to_decimal_string, currency=self.currency)
        state = self.settlement_state(now, return_window)
        return {
            "id": self.id, "shop_id": self.shop_id, "order_id": self.order_id,
            "amount": money(self.amount_minor), "amount_minor": self.amount_minor,
            "currency": self.currency,
            "occurred_at": self.occurred_at.isoformat(), "reported_at": self.reported_at.isoformat(),
            "attributed": self.click_id is not None, "attribution": self.attribution,
            "reason": self.reason, "pending_until": _iso(self.pending_until),
            "attributed_at": _iso(self.attributed_at),
            "click_id": self.click_id, "plan_id": self.plan_id, "creator_id": self.creator_id,
            "product_id": self.product_id,
            "commission": ({"rate_bp": self.rate_bp, "rate": rate_string(self.rate_bp),
                            "source": self.rate_source} if self.click_id else None),
            "commission_minor": self.commission_minor,
            "commission_amount": money(self.commission_minor),
            "refunded_minor": self.refunded_minor, "refunded_amount": money(self.refunded_minor),
            "net_amount_minor": self.net_amount_minor,
            "net_amount": money(self.net_amount_minor),
            "commission_refunded_minor": self.commission_refunded_minor,
            "commission_owed_minor": self.commission_owed_minor,
            "commission_owed": money(self.commission_owed_minor),
            "status": self.status, "refunded_at": _iso(self.refunded_at),
            "settlement": None if state is None else {
                "state": state, "payable_at": (self.occurred_at + return_window).isoformat(),
                "frozen_at": _iso(self.frozen_at), "frozen_reason": self.frozen_reason,
                "payout_id": self.payout_id},
        }


@dataclass(frozen=True)
class Payout:
    id: int
    seller_id: int
    creator_id: int
    currency: str
    amount_minor: int
    conversions: int
    reference: str
    paid_at: datetime
    recorded_by: int | None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "seller_id": self.seller_id, "creator_id": self.creator_id,
                "currency": self.currency, "amount_minor": self.amount_minor,
                "amount": to_decimal_string(self.amount_minor, self.currency),
                "conversions": self.conversions, "reference": self.reference,
                "paid_at": self.paid_at.isoformat()}
