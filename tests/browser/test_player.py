"""The embeddable widget on a third-party page (another origin): cards follow playback, a click
lands on the product page with attribution, keyboard use, and a phone-sized screen."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page

from shoplink.analytics.consumer import CountWorker
from shoplink.keys import REDIS

from .conftest import PHONE, HostSite, WebApp, embed_page, screenshot, sign_in
from support.api import Api
from support.wait import until
from support.web_data import seller_shop, upload_video
from support.web_media import make_webm

pytestmark = pytest.mark.browser

CARDS = "shoplink-overlay a.card"


async def seek(page: Page, seconds: float) -> None:
    """Drive playback deterministically: set currentTime and wait for the seek to finish."""
    await page.evaluate("""t => new Promise(done => {
        const v = document.getElementById('v');
        v.addEventListener('seeked', () => done(), {once: true});
        v.currentTime = t; })""", seconds)


async def shown_codes(page: Page) -> list[str]:
    return sorted(await page.locator(CARDS).evaluate_all("cards => cards.map(c => c.dataset.code)"))


async def count_clicks(webapp: WebApp, who: Api, path: str, expect: int) -> None:
    """Run the analytics count worker until the stats API reports `expect` clicks (bounded)."""
    async def counted() -> bool:
        await CountWorker(webapp.settings, webapp.server.app[REDIS], webapp.pool, exit_when_idle=True).run()
        return bool((await who.get(path)).body["totals"]["clicks"] >= expect)

    await until(counted, timeout=30, interval=0.05, what=f"{path} reaches {expect} clicks")


async def _video_with_anchors(webapp: WebApp, tmp_path: Path) -> tuple[Path, dict, list[dict], Api]:
    shop = await seller_shop(await webapp.account("seller"), webapp.base)
    clip = make_webm(tmp_path / "clip.webm")
    video = await upload_video(shop.seller, clip, "Spring haul")
    anchors = []
    for product, start, end, position in ((shop.products[0], 2.0, 4.0, {"x": 0.08, "y": 0.1}),
                                          (shop.products[1], 4.0, 6.0, None)):
        body = {"product_id": product["id"], "start_s": start, "end_s": end}
        if position:
            body["position"] = position
        reply = await shop.seller.post(f"/api/v1/videos/{video['id']}/anchors", body)
        assert reply.status == 201, reply.body
        anchors.append(reply.body)
    return clip, video, anchors, shop.seller


async def test_cards_follow_playback_on_another_origin_and_click_through(
        webapp: WebApp, host_site: HostSite, context: BrowserContext, page: Page, tmp_path: Path) -> None:
    clip, video, (first, second), seller = await _video_with_anchors(webapp, tmp_path)
    url = host_site.add_html("/shop.html", embed_page(
        webapp.base, host_site.add_video("/clip.webm", clip), "data-shoplink-video", video["id"]))
    assert not url.startswith(webapp.base)  # really another origin
    await page.goto(url)
    await page.wait_for_selector("#v[data-shoplink-ready='true']", state="attached")

    await seek(page, 1.0)
    assert await shown_codes(page) == []
    await seek(page, 2.5)
    assert await shown_codes(page) == [first["code"]]
    card = page.locator(f"{CARDS}[data-code='{first['code']}']")
    assert "Trail Runner Sneakers" in await card.inner_text() and "USD 89.00" in await card.inner_text()
    # The host page hides `.card` and turns links lime; neither reaches into the shadow root.
    assert await card.is_visible()
    assert await card.evaluate("c => getComputedStyle(c).color") != "rgb(0, 255, 0)"
    # Positioned as stored: near the top-left of the picture.
    box, frame = await card.bounding_box(), await page.locator("#v").bounding_box()
    assert box and frame and box["y"] < frame["y"] + frame["height"] * 0.3
    await screenshot(page, "player-embed", docs=True)

    await seek(page, 4.5)
    assert await shown_codes(page) == [second["code"]]
    await seek(page, 1.5)
    assert await shown_codes(page) == []

    # Keyboard: the card is a focusable link; Enter opens the product with the playback second.
    await seek(page, 3.2)
    async with context.expect_page() as opened:
        await card.focus()
        await page.keyboard.press("Enter")
    product_page = await opened.value
    await product_page.wait_for_load_state()
    assert product_page.url.startswith(f"{webapp.base}/demo/shop/products/1?")
    assert await product_page.text_content("#product-title") == "Trail Runner Sneakers"
    click_id = await product_page.text_content("td[data-param='sl_click']")
    assert click_id and click_id != "—"
    await screenshot(product_page, "demo-product-page")
    await product_page.close()

    # The click shows up in the dashboard: totals, top anchors, and the heatmap at second 3.
    await count_clicks(webapp, seller, f"/api/v1/stats/videos/{video['id']}", 1)
    dashboard = await context.new_page()
    await sign_in(dashboard, webapp.base, seller, f"/dashboard/videos/{video['id']}")
    await dashboard.wait_for_selector("[data-kpi='clicks']:text-is('1')")
    assert await dashboard.text_content("[data-kpi='human']") == "1"
    assert await dashboard.text_content("[data-kpi='unique_viewers']") == "1"
    top = dashboard.locator(f"#top tr[data-id='{first['id']}']")
    assert "Trail Runner Sneakers" in await top.inner_text()
    assert await dashboard.locator("#heatmap-section").is_visible()
    heat = (await seller.get(f"/api/v1/stats/videos/{video['id']}/heatmap")).body["cells"]
    assert [c["second"] for c in heat] == [3]
    csv_href = await dashboard.get_attribute("#csv", "href")
    assert csv_href and ".csv?" in csv_href
    csv = await seller.get(csv_href)
    assert csv.status == 200 and csv.body.startswith("t,clicks")
    await screenshot(dashboard, "dashboard-video", docs=True, full_page=True)


async def test_phone_viewport(webapp: WebApp, host_site: HostSite, browser: Browser, tmp_path: Path) -> None:
    clip, video, (first, _), _ = await _video_with_anchors(webapp, tmp_path)
    url = host_site.add_html("/m.html", embed_page(
        webapp.base, host_site.add_video("/clip.webm", clip), "data-shoplink-video", video["id"]))
    phone = await browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    try:
        page = await phone.new_page()
        await page.goto(url)
        await page.wait_for_selector("#v[data-shoplink-ready='true']", state="attached")
        await seek(page, 2.5)
        card = page.locator(f"{CARDS}[data-code='{first['code']}']")
        await card.wait_for()
        box, frame = await card.bounding_box(), await page.locator("#v").bounding_box()
        assert box and frame
        assert frame["width"] <= PHONE["width"] and frame["height"] > frame["width"]  # vertical 9:16
        assert frame["x"] <= box["x"] and box["x"] + box["width"] <= frame["x"] + frame["width"] + 1
        await screenshot(page, "player-phone", docs=True)
    finally:
        await phone.close()


async def test_widget_works_on_a_host_page_with_a_strict_csp(webapp: WebApp, host_site: HostSite, page: Page,
                                                            tmp_path: Path) -> None:
    """A shop whose own CSP allows our script and API but no inline style: the cards still show
    (styles through CSSOM and an adopted style sheet) and nothing is reported as a violation."""
    clip, video, (first, _), _ = await _video_with_anchors(webapp, tmp_path)
    src = host_site.add_video("/strict.webm", clip)
    html = f"""<!doctype html><html><head><meta charset="utf-8"><title>Strict shop</title>
<script src="{webapp.base}/v1/player.js" defer></script></head><body>
<video id="v" controls playsinline muted preload="auto" src="{src}" data-shoplink-video="{video['id']}"></video>
</body></html>"""
    url = host_site.add_html("/strict.html", html, csp=(
        f"default-src 'self'; script-src {webapp.base}; connect-src {webapp.base}; "
        "img-src 'self' data: https: http:; style-src 'self'; object-src 'none'"))
    await page.goto(url)
    await page.wait_for_selector("#v[data-shoplink-ready='true']", state="attached")
    await seek(page, 2.5)
    card = page.locator(f"{CARDS}[data-code='{first['code']}']")
    await card.wait_for()
    assert await card.is_visible()
    radius = await card.evaluate("c => getComputedStyle(c).borderRadius")
    assert radius == "12px"  # the widget's own style sheet applies
