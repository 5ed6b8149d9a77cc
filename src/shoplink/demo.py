"""`shoplink demo`: seed a demo seller, creator, shop and products so a newcomer can click around,
and the demo video of the /demo page: a generated clip with one demo product anchored per scene.

Running it again reuses what exists and issues fresh tokens (tokens are only ever shown once).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiohttp import web

from shoplink import db
from shoplink.app import create_app
from shoplink.auth.models import Principal, Role
from shoplink.auth.service import AuthService
from shoplink.catalog.service import CatalogService
from shoplink.changes import ChangeBus
from shoplink.config import Settings
from shoplink.domains.service import DomainService
from shoplink.keys import ANCHORS, VIDEOS
from shoplink.web.demo_content import DEMO_CREATOR, DEMO_PRODUCTS, DEMO_SELLER, DEMO_SHOP, DEMO_VIDEO_TITLE
from shoplink.web.demo_media import make_webm
from shoplink.web.demo_page import demo_video

SCENE_SECONDS = 3.0
# Where each product's card sits on its scene (fractions of the frame); None: the default stack.
POSITIONS: tuple[dict[str, float] | None, ...] = ({"x": 0.06, "y": 0.12}, None, {"x": 0.06, "y": 0.62})


async def _account(auth: AuthService, name: str, roles: list[str]) -> dict[str, Any]:
    existing = await auth.find_account_by_name(name)
    if existing is None:
        account, token = await auth.create_account(name, roles, token_label="demo")
    else:
        account, token = await auth.create_account_token(existing.id, "demo")
    return {"id": account.id, "name": account.name, "token": token.token}


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
        result.update(await _seed_demo_video(settings, result))
        sys.stdout.write(orjson.dumps(result).decode() + "\n")
        sys.stdout.flush()
    finally:
        await pool.close()
    return 0


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    yield await asyncio.to_thread(path.read_bytes)


async def _seed_demo_video(settings: Settings, result: dict[str, Any]) -> dict[str, Any]:
    """The demo clip with one anchor per product (once; reused after), made through the app's
    own services (started without serving HTTP)."""
    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        video = await demo_video(app)
        if video is None:
            who = Principal(result["seller"]["id"], DEMO_SELLER, frozenset({Role.SELLER}))
            with tempfile.TemporaryDirectory() as tmp:
                clip = await asyncio.to_thread(
                    make_webm, Path(tmp) / "demo.webm", scene_seconds=SCENE_SECONDS, scenes=len(DEMO_PRODUCTS),
                    size=(360, 640), captions=[title.split()[-1] for title, _ in DEMO_PRODUCTS])
                incoming = await app[VIDEOS].receive(_chunks(clip), "demo.webm")
                video = await app[VIDEOS].create_from_upload(who, incoming, DEMO_VIDEO_TITLE)
            for n, product_id in enumerate(result["product_ids"][:len(DEMO_PRODUCTS)]):
                body: dict[str, Any] = {"product_id": product_id, "start_s": n * SCENE_SECONDS,
                                        "end_s": min((n + 1) * SCENE_SECONDS, video.duration_s)}
                if POSITIONS[n % len(POSITIONS)] is not None:
                    body["position"] = POSITIONS[n % len(POSITIONS)]
                await app[ANCHORS].create_video_anchor(who, video.id, body)
        url = f"{settings.public_base_url}/demo"
        print(f"demo page: {url}", file=sys.stderr)  # stdout stays one JSON document
        return {"demo_video_id": video.id, "demo_url": url}
    finally:
        await runner.cleanup()
