"""May this publisher attach this product to their video or live session?

A seller may promote products of shops they own. A creator may promote another seller's
product only through a promotion plan they are enrolled in (the affiliate program plugs in
through `PromotionRights.plan_lookup`). Videos and live sessions both ask here, so the rule
lives in one place.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from shoplink.auth.models import Principal
from shoplink.catalog.models import Product
from shoplink.catalog.service import CatalogService
from shoplink.errors import field_error


@dataclass(frozen=True)
class PromotionRight:
    product: Product
    plan_id: int | None  # None: the publisher sells their own product


# (publisher account id, product) -> the id of an active plan they are enrolled in, or None
PlanLookup = Callable[[int, Product], Awaitable[int | None]]


class PromotionRights:
    def __init__(self, catalog: CatalogService) -> None:
        self._catalog = catalog
        self.plan_lookup: PlanLookup | None = None

    async def check(self, who: Principal, product_id: int, field: str = "product_id") -> PromotionRight:
        """The right to anchor `product_id`, or a 422 naming `field` (never revealing other shops)."""
        product = await self._catalog.product_by_id(product_id)
        plan_id = None
        if product is not None and not (product.owner_id == who.account_id or who.is_admin):
            plan_id = await self.plan_lookup(who.account_id, product) if self.plan_lookup else None
            if plan_id is None:
                product = None
        if product is None:  # unknown and not-yours look the same: ids of other shops do not leak
            raise field_error(field, "you may anchor only your own products or products of a "
                              "promotion plan you have joined", code="not_promotable")
        right = PromotionRight(product, plan_id)
        if not product.active:
            raise field_error(field, "product is delisted", code="product_delisted")
        return right
