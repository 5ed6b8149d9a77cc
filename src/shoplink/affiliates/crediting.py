"""Which click a sale is credited to, and the commission that follows: the rule shared by the
report (conversions.py) and the sales that waited for their click (pending.py).

The money rules (docs/affiliates.md): amounts are integer minor units; the commission on a sale is
`percentage_of(amount, rate_bp)`, rounded half-even; after refunds the commission owed is the same
rule applied to what the buyer kept, `percentage_of(amount - refunded, rate_bp)`, and the refunded
commission is the difference. So the owed commission never goes below zero, a whole refund brings
it to zero, and it does not depend on how the refunds were split.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shoplink.affiliates import repository as repo
from shoplink.affiliates.models import PENDING_ATTRIBUTION, AttributedClick
from shoplink.db import Conn
from shoplink.money import percentage_of


@dataclass(frozen=True)
class Decision:
    """`click`: the click to credit (None: none). `reason`: last_click, or why not. `waiting`:
    the answer may still change when more clicks are stored (the shop's click id, or any click of
    its viewer at this shop, is not known yet)."""

    click: AttributedClick | None
    reason: str
    waiting: bool = False


async def decide(con: Conn, *, shop_id: int, click_id: str | None, viewer: str | None,
                 occurred_at: datetime, window: timedelta) -> Decision:
    problem: str | None = None
    if click_id is not None:
        given = await repo.get_click(con, click_id)
        if given is None:
            problem = "click_unknown"
        elif given.shop_id != shop_id:
            return Decision(None, "click_of_another_shop")
        else:
            viewer = given.viewer
    if viewer is not None:
        # By viewer alone, "none of the viewer's clicks is known yet" (keep waiting) is read
        # BEFORE looking for the qualifying click: each statement sees what was committed before
        # it started (READ COMMITTED), so a click the consumer commits between the two reads is
        # then found by the second. The other order missed it and settled the sale for good.
        unknown_viewer = click_id is None and not await repo.viewer_has_clicks(
            con, viewer=viewer, shop_id=shop_id)
        credited = await repo.last_qualifying_click(
            con, viewer=viewer, shop_id=shop_id, since=occurred_at - window, until=occurred_at)
        if credited is not None and credited.rate_bp is not None:
            return Decision(credited, "last_click")
        if problem is None and click_id is None:
            return Decision(None, "no_qualifying_click", waiting=unknown_viewer)
    if problem is not None:
        return Decision(None, problem, waiting=True)
    return Decision(None, "no_qualifying_click")


def owed_after_refunds(amount_minor: int, refunded_minor: int, rate_bp: int | None) -> int:
    """The commission owed on what the buyer kept."""
    if rate_bp is None:
        return 0
    return percentage_of(amount_minor - refunded_minor, rate_bp)


def credit_values(click: AttributedClick, *, amount_minor: int, refunded_minor: int,
                  at: datetime) -> dict[str, Any]:
    """The columns a credited conversion gets (refunds already made are taken into account)."""
    assert click.rate_bp is not None
    gross = percentage_of(amount_minor, click.rate_bp)
    owed = owed_after_refunds(amount_minor, refunded_minor, click.rate_bp)
    return {"click_id": click.event_id, "plan_id": click.plan_id, "creator_id": click.creator_id,
            "product_id": click.product_id, "rate_bp": click.rate_bp,
            "rate_source": click.rate_source, "commission_minor": gross,
            "commission_refunded_minor": gross - owed, "reason": "last_click",
            "pending_until": None, "attributed_at": at}


def outcome_values(decision: Decision, *, amount_minor: int, refunded_minor: int, now: datetime,
                   pending_until: datetime) -> dict[str, Any]:
    """The columns for a decision: credited, still pending until `pending_until`, or final."""
    if decision.click is not None:
        return credit_values(decision.click, amount_minor=amount_minor,
                             refunded_minor=refunded_minor, at=now)
    if decision.waiting and now < pending_until:
        return {"reason": PENDING_ATTRIBUTION, "pending_until": pending_until}
    return {"reason": decision.reason, "pending_until": None}
