"""Data for browser tests, made through the real HTTP API."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.api import Api

PRODUCTS = (("Trail Runner Sneakers", "89.00"), ("Canvas Weekender Bag", "129.50"),
            ("Ceramic Pour-Over Set", "42.00"))


@dataclass
class Shop:
    seller: Api
    shop_id: int
    products: list[dict[str, Any]]


async def seller_shop(seller: Api, base: str) -> Shop:
    """A shop on 127.0.0.1 whose products are the app's demo shop pages (they show what they receive)."""
    reply = await seller.post("/api/v1/shops", {"name": "Browser Shop", "domains": ["127.0.0.1"]})
    assert reply.status == 201, reply.body
    shop_id = reply.body["id"]
    products = []
    for n, (title, price) in enumerate(PRODUCTS, start=1):
        made = await seller.post(f"/api/v1/shops/{shop_id}/products", {
            "title": title, "url": f"{base}/demo/shop/products/{n}", "price": price, "currency": "USD"})
        assert made.status == 201, made.body
        products.append(made.body)
    return Shop(seller, shop_id, products)


async def upload_video(who: Api, path: Path, title: str) -> dict[str, Any]:
    from aiohttp import FormData

    form = FormData()
    form.add_field("title", title)
    form.add_field("file", path.read_bytes(), filename=path.name, content_type="video/webm")
    reply = await who.request("POST", "/api/v1/videos", data=form)
    assert reply.status == 201, reply.body
    return dict(reply.body)
