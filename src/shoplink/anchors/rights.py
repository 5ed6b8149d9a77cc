"""May this publisher attach this product to their video or live session?

A seller may promote products of shops they own. A creator may promote another seller's
product only through a promotion plan they are enrolled in (the affiliate program, passed in as
`plans`). Videos and live sessions both ask here, so the rule lives in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from shoplink.auth.models import Principal
from shoplink.catalog.models import Product
from shoplink.catalog.service import CatalogService
from shoplink.errors import field_error


@dataclass(frozen=True)
class PromotionRight:
    product: Product
    plan_id: int | None  # None: the publisher sells their own product


class PlanEnrolments(Protocol):
    """The affiliate program, as promotion rights need it."""

    async def plan_lookup(self, creator_id: int, product: Product) -> int | None:
        """The id of an active plan carrying `product` that the creator joined, or None."""


class PromotionRights:
    def __init__(self, catalog: CatalogService, plans: PlanEnrolments) -> None:
        self._catalog = catalog
        self.plans = plans

    async def check(self, who: Principal, product_id: int, field: str = "product_id") -> PromotionRight:
        """The right to anchor `product_id`, or a 422 naming `field` (never revealing other shops)."""
        product = await self._catalog.product_by_id(product_id)
        plan_id = None
        if product is not None and not (product.owner_id == who.account_id or who.is_admin):
            plan_id = await self.plans.plan_lookup(who.account_id, product)
            if plan_id is None:
                product = None
        if product is None:  # unknown and not-yours look the same: ids of other shops do not leak
            raise field_error(field, "you may anchor only your own products or products of a "
                              "promotion plan you have joined", code="not_promotable")
        right = PromotionRight(product, plan_id)
        if not product.active:
            raise field_error(field, "product is delisted", code="product_delisted")
        return right
