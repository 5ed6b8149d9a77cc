"""Stats request parameters, and what stats ask the affiliate program about promotion plans."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

# Route segment -> entity kind
ROUTE_KINDS = {"anchors": "anchor", "videos": "video", "live": "live", "products": "product",
               "shops": "shop", "creators": "creator", "plans": "plan"}


class PlanOwners(Protocol):
    """The affiliate program (the plan tables live there), as stats authorization needs it."""

    async def plan_owner(self, plan_id: int) -> int | None:
        """The account id of the seller who owns the promotion plan; None when there is none."""


@dataclass(frozen=True)
class Range:
    granularity: str
    start_s: int  # aligned to the bucket
    end_s: int  # exclusive, aligned to the bucket
    size_s: int
