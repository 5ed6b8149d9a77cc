"""The live viewer page plays the host's stream: HLS made at test time (tests/support/hls.py),
served by a "CDN" on another origin with CORS, played through hls.js; a plain file natively."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Page

from .a11y import assert_accessible
from .conftest import WebApp, screenshot, sign_in
from support.hls import make_hls
from support.services import free_port
from support.web_data import seller_shop
from support.web_media import make_webm

pytestmark = pytest.mark.browser

TYPES = {".m3u8": "application/vnd.apple.mpegurl", ".mp4": "video/mp4", ".m4s": "video/iso.segment",
         ".webm": "video/webm"}


@pytest.fixture
async def cdn(tmp_path: Path) -> AsyncIterator[tuple[str, Path]]:
    """A stream host on another origin: files from a folder, readable cross-origin."""
    folder = tmp_path / "cdn"
    folder.mkdir()

    async def serve(request: web.Request) -> web.StreamResponse:
        path = folder / request.match_info["name"]
        if not path.is_file():
            raise web.HTTPNotFound()
        return web.FileResponse(path, headers={"Access-Control-Allow-Origin": "*",
                                               "Content-Type": TYPES[path.suffix]})

    app = web.Application()
    app.router.add_get("/{name}", serve)
    server = TestServer(app, host="127.0.0.1", port=free_port())
    await server.start_server()
    yield str(server.make_url("")).rstrip("/"), folder
    await server.close()


async def playing(page: Page) -> None:
    """Frames decoded and the clock moving: the stream really plays."""
    await page.wait_for_function("""() => { const v = document.getElementById('viewer-video');
        return v.readyState >= 2 && v.videoWidth > 0 && v.currentTime > 0.5; }""", timeout=30_000)


async def test_watch_page_plays_the_hosts_hls_stream_with_cards(webapp: WebApp, cdn: tuple[str, Path],
                                                                page: Page) -> None:
    cdn_base, folder = cdn
    make_hls(folder, seconds=6.0)
    shop = await seller_shop(await webapp.account("seller", name="Host Lu"), webapp.base)
    live = (await shop.seller.post("/api/v1/live", {
        "title": "Streamed drop", "product_ids": [shop.products[0]["id"]]})).body
    await shop.seller.post(f"/api/v1/live/{live['id']}/start")

    # The host sets the stream in the console.
    await sign_in(page, webapp.base, shop.seller, f"/studio/live/{live['id']}")
    await page.wait_for_selector("#console[data-ready='true']")
    await page.fill("#stream-url", "ftp://nope.example/live.m3u8")
    await page.click("#stream-save")
    await page.wait_for_selector("#stream-error:not(:empty)")
    assert "https" in (await page.text_content("#stream-error") or "")
    await page.fill("#stream-url", f"{cdn_base}/live.m3u8")
    await page.click("#stream-save")
    await page.wait_for_selector(f"#console[data-stream-saved='{cdn_base}/live.m3u8']")
    assert (await shop.seller.get(f"/v1/live/{live['id']}")).body["stream_url"] == f"{cdn_base}/live.m3u8"
    await page.click(f".set-item[data-product-id='{shop.products[0]['id']}'] button[data-action='pin']")
    await page.wait_for_selector(f".set-item.pinned[data-product-id='{shop.products[0]['id']}']")

    await page.goto(f"{webapp.base}/watch/live/{live['id']}")
    video = page.locator("#viewer-video")
    assert await video.get_attribute("data-stream-url") == f"{cdn_base}/live.m3u8"
    await playing(page)
    assert await video.get_attribute("data-player") == "hls.js"
    assert await page.evaluate("() => typeof window.Hls === 'function'")
    size = await page.evaluate("() => [document.getElementById('viewer-video').videoWidth,"
                               " document.getElementById('viewer-video').videoHeight]")
    assert size == [180, 320]
    await page.locator("shoplink-overlay a.card").wait_for()
    await screenshot(page, "watch-live-hls", docs=True)
    await assert_accessible(page)


async def test_watch_page_waits_for_the_stream_then_plays_a_file_natively(
        webapp: WebApp, cdn: tuple[str, Path], page: Page) -> None:
    cdn_base, folder = cdn
    make_webm(folder / "live.webm", scenes=4)
    shop = await seller_shop(await webapp.account("seller"), webapp.base)
    live = (await shop.seller.post("/api/v1/live", {"title": "Later stream"})).body
    await page.goto(f"{webapp.base}/watch/live/{live['id']}")
    await page.wait_for_selector("#stream-status:has-text('Waiting')")
    reply = await shop.seller.patch(f"/api/v1/live/{live['id']}", {"stream_url": f"{cdn_base}/live.webm"})
    assert reply.status == 200, reply.body
    await page.wait_for_selector("#viewer-video[data-player='native']", state="attached", timeout=30_000)
    await playing(page)
