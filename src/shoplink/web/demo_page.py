"""The demo page (`/demo`): the seeded demo video playing with product cards from the widget.

`shoplink demo` (through DEMO_EXTENSIONS) generates a short vertical clip, uploads it as the demo
seller and anchors one demo product per scene; the page plays it and every card leads, through the
real redirect, to the demo shop's product page that shows the attribution it received.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

from shoplink.auth.models import Principal, Role
from shoplink.config import Settings
from shoplink.demo import DEMO_EXTENSIONS, DEMO_PRODUCTS, DEMO_SELLER
from shoplink.keys import ANCHORS, AUTH, SETTINGS, VIDEOS
from shoplink.videos.models import Video
from shoplink.web.demo_media import make_webm
from shoplink.web.pages import viewer_page

routes = web.RouteTableDef()
DEMO_VIDEO_TITLE = "shoplink demo: spring picks"
SCENE_SECONDS = 3.0
# Where each product's card sits on its scene (fractions of the frame); None: the default stack.
POSITIONS: tuple[dict[str, float] | None, ...] = ({"x": 0.06, "y": 0.12}, None, {"x": 0.06, "y": 0.62})


async def _demo_video(app: web.Application) -> Video | None:
    seller = await app[AUTH].find_account_by_name(DEMO_SELLER)
    if seller is None:
        return None
    who = Principal(seller.id, seller.name, frozenset({Role.SELLER}))
    videos = [v for v in await app[VIDEOS].list_videos(who, 200, 0) if v.title == DEMO_VIDEO_TITLE]
    return videos[-1] if videos else None


@routes.get("/demo")
async def demo(request: web.Request) -> web.Response:
    video = await _demo_video(request.app)
    base = request.app[SETTINGS].public_base_url
    if video is None:
        raise web.HTTPNotFound(text="No demo video yet: run `shoplink demo` (scripts/serve does) and reload.")
    snippet = (f'<script src="{base}/v1/player.js" defer></script>\n'
               f'<video src="your-video.webm" controls playsinline data-shoplink-video="{video.id}"></video>')
    return viewer_page(
        request, title="Demo", heading="Shoppable video demo",
        intro="Play the video (or drag its slider): a product card shows while its product is on screen. "
              "Click a card to go, through the tracked redirect, to the demo shop's product page.",
        attr="data-shoplink-video", entity_id=video.id, video_src=f"/demo/video/{video.id}", snippet=snippet,
        footer='Sign in at <a href="/signin">/signin</a> with the demo tokens `shoplink demo` printed to '
               'edit the timeline in the studio and see the clicks in the dashboard.')


@routes.get("/demo/video/{video_id}")
async def demo_video_file(request: web.Request) -> web.StreamResponse:
    """Only the demo video is public here (other videos are served to their owners only)."""
    video = await _demo_video(request.app)
    if video is None or str(video.id) != request.match_info["video_id"]:
        raise web.HTTPNotFound()
    return web.FileResponse(video.file_path, headers={"Cache-Control": "public, max-age=3600"})


async def _chunks(path: Path) -> AsyncIterator[bytes]:
    yield await asyncio.to_thread(path.read_bytes)


async def seed_demo_video(settings: Settings, pool: asyncpg.Pool, result: dict[str, Any]) -> dict[str, Any]:
    """DEMO_EXTENSIONS hook: the demo clip with one anchor per product (once; reused after)."""
    from shoplink.app import create_app  # the app's services, started without serving HTTP

    app = create_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        video = await _demo_video(app)
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


DEMO_EXTENSIONS.append(seed_demo_video)


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
