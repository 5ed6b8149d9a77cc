"""Stats request parameters and the authorization hook of promotion plans."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

# Route segment -> entity kind
ROUTE_KINDS = {"anchors": "anchor", "videos": "video", "live": "live", "products": "product",
               "shops": "shop", "creators": "creator", "plans": "plan"}


@dataclass
class StatsAccess:
    """Ownership look-ups that other domains provide.

    `plan_owner(plan_id)` -> the account id of the seller who owns the promotion plan, or None
    when there is no such plan. The affiliate program sets it at start-up (the plan tables live
    there). While it is None, plan stats are readable by analysts and admins only.
    """

    plan_owner: Callable[[int], Awaitable[int | None]] | None = None


@dataclass(frozen=True)
class Range:
    granularity: str
    start_s: int  # aligned to the bucket
    end_s: int  # exclusive, aligned to the bucket
    size_s: int
