"""Stats request parameters, and what stats ask the affiliate program about promotion plans."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

# Route segment -> entity kind
ROUTE_KINDS = {"anchors": "anchor", "videos": "video", "live": "live", "products": "product",
               "shops": "shop", "creators": "creator", "plans": "plan"}


class PlanOwners(Protocol):
    """The affiliate program (the plan tables live there), as stats authorization needs it."""

    async def plan_owner(self, plan_id: int) -> int | None:
        """The account id of the seller who owns the promotion plan; None when there is none."""


class SalesSource(Protocol):
    """The affiliate program's conversions, as the stats API's funnel needs them."""

    async def sales_totals(self, kind: str, entity_id: int, start: datetime,
                           end: datetime) -> list[tuple[str, int, int, int]]:
        """(currency, orders, gmv_minor, commission_minor) of the entity in [start, end)."""


@dataclass(frozen=True)
class Range:
    granularity: str
    start_s: int  # aligned to the bucket
    end_s: int  # exclusive, aligned to the bucket
    size_s: int
