from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shoplink.domains.models import FAILED, ShopDomain
from shoplink.domains.names import DomainRule
from shoplink.money import to_decimal_string


@dataclass(frozen=True)
class Shop:
    id: int
    owner_id: int
    name: str
    fallback_url: str | None
    created_at: datetime
    updated_at: datetime
    domains: tuple[ShopDomain, ...] = field(default=())

    @property
    def rules(self) -> list[DomainRule]:
        """Domains product URLs may use: every claim but failed ones (a product may be prepared
        while its domain is pending; it redirects only once the domain is verified)."""
        return [d.rule for d in self.domains if d.state != FAILED]

    @property
    def verified_rules(self) -> list[DomainRule]:
        return [d.rule for d in self.domains if d.verified]

    def domain(self, name: str) -> ShopDomain | None:
        return next((d for d in self.domains if d.domain == name), None)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "owner_id": self.owner_id, "name": self.name,
                "fallback_url": self.fallback_url, "domains": [d.to_json() for d in self.domains],
                "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat()}


@dataclass(frozen=True)
class Product:
    id: int
    shop_id: int
    owner_id: int
    title: str
    url: str
    price_minor: int | None
    currency: str | None
    image_url: str | None
    sku: str | None
    status: str
    created_at: datetime
    updated_at: datetime

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def price(self) -> str | None:
        if self.price_minor is None or self.currency is None:
            return None
        return to_decimal_string(self.price_minor, self.currency)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "shop_id": self.shop_id, "title": self.title, "url": self.url,
                "price": self.price, "price_minor": self.price_minor, "currency": self.currency,
                "image_url": self.image_url, "sku": self.sku, "status": self.status,
                "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat()}
