"""`shoplink demo`: seed a demo seller, creator, shop and products so a newcomer can click around.

Running it again reuses what exists and issues fresh tokens (tokens are only ever shown once).
"""

from __future__ import annotations

import argparse
from typing import Any
from urllib.parse import urlsplit

from shoplink import db
from shoplink.auth.models import Principal, Role
from shoplink.auth.service import AuthService
from shoplink.catalog.service import CatalogService
from shoplink.changes import ChangeBus
from shoplink.cli import _print_json, command
from shoplink.config import Settings
from shoplink.domains.service import DomainService

DEMO_SELLER = "Demo Seller"
DEMO_CREATOR = "Demo Creator"
DEMO_SHOP = "Demo Shop"
DEMO_PRODUCTS = (
    ("Trail Runner Sneakers", "89.00"),
    ("Canvas Weekender Bag", "129.50"),
    ("Ceramic Pour-Over Set", "42.00"),
)


async def _account(auth: AuthService, name: str, roles: list[str]) -> dict[str, Any]:
    existing = await auth.find_account_by_name(name)
    if existing is None:
        account, token = await auth.create_account(name, roles, token_label="demo")
    else:
        account, token = await auth.create_account_token(existing.id, "demo")
    return {"id": account.id, "name": account.name, "token": token.token}


@command("demo")
async def seed_demo(settings: Settings, args: argparse.Namespace) -> int:
    pool = await db.create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        auth = AuthService(pool)
        changes = ChangeBus()  # a new shop: nothing cached anywhere yet
        domains = DomainService.from_settings(pool, settings, changes)
        catalog = CatalogService(pool, domains=domains, allow_http_urls=settings.allow_http_urls,
                                 changes=changes, media_base_url=settings.public_base_url)
        seller = await _account(auth, DEMO_SELLER, ["seller"])
        creator = await _account(auth, DEMO_CREATOR, ["creator"])
        who = Principal(seller["id"], DEMO_SELLER, frozenset({Role.SELLER}))
        shops = [s for s in await catalog.list_shops(who, 500, 0) if s.name == DEMO_SHOP]
        base = settings.public_base_url
        host = urlsplit(base).hostname or "localhost"
        if shops:
            shop = shops[0]
        else:
            shop = await catalog.create_shop(who, {"name": DEMO_SHOP, "domains": [host]})
            await catalog.create_products(who, shop.id, [
                {"title": title, "url": f"{base}/demo/shop/products/{n}", "price": price,
                 "currency": "USD", "sku": f"DEMO-{n}"}
                for n, (title, price) in enumerate(DEMO_PRODUCTS, start=1)])
        products = await catalog.list_products(who, shop_id=shop.id, status="active", search=None,
                                               limit=50, after_id=0)
        result = {"base_url": base, "seller": seller, "creator": creator, "shop_id": shop.id,
                  "product_ids": [p.id for p in products]}
        for extend in DEMO_EXTENSIONS:
            result.update(await extend(settings, pool, result))
        _print_json(result)
    finally:
        await pool.close()
    return 0


# Later domains (videos, web pages) add demo content through these hooks.
DEMO_EXTENSIONS: list[Any] = []
