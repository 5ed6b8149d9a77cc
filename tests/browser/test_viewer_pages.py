"""Viewer-facing pages at phone and desktop sizes: cards kept inside the picture, no sideways
scroll, the widget untouched by hostile host CSS, the studio's card preview, axe-core checks."""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, FloatRect, Page, ViewportSize

from shoplink.demo import seed_demo

from .a11y import assert_accessible, horizontal_overflow
from .conftest import HostSite, WebApp, embed_page, screenshot, sign_in
from support.api import Api
from support.web_data import seller_shop, upload_video
from support.web_media import make_webm

pytestmark = pytest.mark.browser

CARDS = "shoplink-overlay a.card"
PHONE_WIDTHS = (360, 390, 414)
LONG_LABEL = "Trail Runner Sneakers, the lightweight everyday pair in three colours"


async def seek(page: Page, seconds: float, video: str = "#v") -> None:
    await page.evaluate("""([sel, t]) => new Promise(done => {
        const v = document.querySelector(sel);
        v.addEventListener('seeked', () => done(), {once: true});
        v.currentTime = t; })""", [video, seconds])


async def placed_video(webapp: WebApp, tmp_path: Path, positions: list[dict[str, float] | None]) -> tuple[
        Path, dict[str, Any], list[dict[str, Any]], Api]:
    """A 6 s clip with one anchor per 2 s slot, each at the given position (long labels)."""
    shop = await seller_shop(await webapp.account("seller"), webapp.base)
    clip = make_webm(tmp_path / "clip.webm")
    video = await upload_video(shop.seller, clip, "Placed cards")
    anchors = []
    for n, position in enumerate(positions):
        body: dict[str, Any] = {"product_id": shop.products[n % 3]["id"], "start_s": 2.0 * n,
                                "end_s": 2.0 * n + 2.0, "label": LONG_LABEL}
        if position is not None:
            body["position"] = position
        reply = await shop.seller.post(f"/api/v1/videos/{video['id']}/anchors", body)
        assert reply.status == 201, reply.body
        anchors.append(reply.body)
    return clip, video, anchors, shop.seller


def inside(inner: FloatRect | None, outer: FloatRect | None) -> bool:
    assert inner and outer
    return (outer["x"] - 0.5 <= inner["x"] and inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 0.5
            and outer["y"] - 0.5 <= inner["y"] and inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 0.5)


SMALL_PLAYER = """<!doctype html><html><head><meta charset="utf-8"><title>Small player</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body {{ margin: 0; }} .box {{ position: relative; width: 300px; margin: 20px; }}
video {{ width: 300px; aspect-ratio: 9 / 16; display: block; background: #000; }}</style>
<script src="{base}/v1/player.js" defer></script></head><body><div class="box">
<video id="v" controls playsinline muted preload="auto" src="{src}" data-shoplink-video="{video_id}"></video>
</div></body></html>"""


async def test_cards_stay_inside_a_300px_video_wherever_they_were_placed(
        webapp: WebApp, host_site: HostSite, page: Page, tmp_path: Path) -> None:
    # Right of centre (the card used to span x 150-417 on a 300 px video), the bottom-right corner.
    clip, video, anchors, _ = await placed_video(webapp, tmp_path, [{"x": 0.5, "y": 0.3}, {"x": 1.0, "y": 1.0}])
    url = host_site.add_html("/small.html", SMALL_PLAYER.format(
        base=webapp.base, src=host_site.add_video("/clip.webm", clip), video_id=video["id"]))
    await page.goto(url)
    await page.wait_for_selector("#v[data-shoplink-ready='true']", state="attached")
    frame = await page.locator("#v").bounding_box()
    assert frame and round(frame["width"]) == 300
    for anchor, second in zip(anchors, (1.0, 3.0), strict=True):
        await seek(page, second)
        card = page.locator(f"{CARDS}[data-code='{anchor['code']}']")
        await card.wait_for()
        box = await card.bounding_box()
        assert inside(box, frame), (anchor["position"], box, frame)
        assert inside(await card.locator(".cta").bounding_box(), frame)
        assert await card.locator(".cta").is_visible()
    await screenshot(page, "player-small-clamped")


async def test_studio_previews_the_card_as_the_widget_draws_it(
        webapp: WebApp, browser: Browser, tmp_path: Path) -> None:
    shop = await seller_shop(await webapp.account("seller"), webapp.base)
    video = await upload_video(shop.seller, make_webm(tmp_path / "clip.webm"), "Preview me")
    ctx = await browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = await ctx.new_page()
        await sign_in(page, webapp.base, shop.seller, f"/studio/videos/{video['id']}")
        await page.wait_for_selector("#timeline[data-ready='true']")
        assert await page.locator(CARDS).count() == 0  # nothing chosen, nothing previewed
        # Count the cards handed to the beacons' hook (player_events.js): the preview is none of them.
        await page.evaluate("""() => { const hooks = window.__shoplinkEvents, card = hooks.card;
            window.__beaconCards = 0;
            hooks.card = (...args) => { window.__beaconCards += 1; return card(...args); }; }""")
        await page.fill("#product-search", "Trail")
        await page.click("#product-results li[data-product-id]")
        preview = page.locator(f"{CARDS}.preview")
        await preview.wait_for()
        assert "Trail Runner Sneakers" in await preview.inner_text()
        assert "USD 89.00" in await preview.inner_text()
        await page.fill("#label", "Spring sneakers")
        await page.wait_for_function(
            "() => document.querySelector('shoplink-overlay').shadowRoot.querySelector('.card .title')"
            ".textContent === 'Spring sneakers'")
        # Placed right of centre: the preview moves there and stays inside the picture.
        await page.click("#place")
        player = await page.locator("#player").bounding_box()
        assert player
        await page.mouse.click(player["x"] + player["width"] * 0.5 + 10, player["y"] + player["height"] * 0.3)
        await page.wait_for_selector(f"{CARDS}.placed.preview")
        box = await page.locator(f"{CARDS}.preview").bounding_box()
        assert box and box["x"] > player["x"] + player["width"] * 0.2
        assert inside(box, player)
        # The very rendering of the widget: the same styles as a card on a shop's page.
        assert await page.locator(f"{CARDS}.preview").evaluate(
            "c => [getComputedStyle(c).borderRadius, getComputedStyle(c.querySelector('.cta')).backgroundColor]"
        ) == ["12px", "rgb(196, 30, 82)"]
        await screenshot(page, "studio-card-preview", docs=True)
        assert await page.evaluate("() => window.__beaconCards") == 0
        await assert_accessible(page)
    finally:
        await ctx.close()


async def test_studio_ruler_labels_never_touch_on_a_phone(webapp: WebApp, browser: Browser, tmp_path: Path) -> None:
    shop = await seller_shop(await webapp.account("seller"), webapp.base)
    clip = make_webm(tmp_path / "long.webm", scenes=6, scene_seconds=5.0, fps=4)
    video = await upload_video(shop.seller, clip, "Thirty seconds")
    ctx = await browser.new_context(viewport={"width": 360, "height": 780}, is_mobile=True, has_touch=True)
    try:
        page = await ctx.new_page()
        await sign_in(page, webapp.base, shop.seller, f"/studio/videos/{video['id']}")
        await page.wait_for_selector("#timeline[data-ready='true']")
        boxes = await page.locator("#ruler span").evaluate_all(
            "spans => spans.map(s => { const r = s.getBoundingClientRect(); return [r.left, r.right]; })")
        ruler = await page.locator("#ruler").bounding_box()
        assert ruler and len(boxes) >= 2
        for (_, right), (left, _) in itertools.pairwise(boxes):
            assert right + 2 <= left, boxes
        assert boxes[0][0] >= ruler["x"] - 0.5 and boxes[-1][1] <= ruler["x"] + ruler["width"] + 0.5
        await screenshot(page, "studio-phone", full_page=True)
    finally:
        await ctx.close()


async def test_viewer_pages_never_scroll_sideways_on_phones(
        webapp: WebApp, host_site: HostSite, browser: Browser, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    await seed_demo(webapp.settings, argparse.Namespace(quiet=True))
    capsys.readouterr()
    shop = await seller_shop(await webapp.account("seller"), webapp.base)
    live = await shop.seller.post("/api/v1/live", {"title": "Phone live"})
    assert live.status == 201, live.body
    clip, video, _, _ = await placed_video(webapp, tmp_path, [{"x": 0.9, "y": 0.1}])
    embed = host_site.add_html("/embed.html", embed_page(
        webapp.base, host_site.add_video("/clip.webm", clip), "data-shoplink-video", video["id"]))
    pages = {"demo": (f"{webapp.base}/demo", "#viewer-video"),
             "watch-live": (f"{webapp.base}/watch/live/{live.body['id']}", "#viewer-video"),
             "embed": (embed, "#v")}
    for width in PHONE_WIDTHS:
        viewport: ViewportSize = {"width": width, "height": 800}
        ctx = await browser.new_context(viewport=viewport, is_mobile=True, has_touch=True, device_scale_factor=2)
        try:
            page = await ctx.new_page()
            for name, (url, selector) in pages.items():
                await page.goto(url)
                await page.wait_for_selector(f"{selector}[data-shoplink-ready='true']", state="attached")
                if name == "embed":
                    await seek(page, 1.0)
                    await page.locator(CARDS).wait_for()
                assert await horizontal_overflow(page) == 0, (name, width)
                box = await page.locator(selector).bounding_box()
                assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, (name, width, box)
                if width == 390:
                    await screenshot(page, f"{name}-phone-{width}", full_page=True)
                    if name != "embed":  # the host shop's own page is not ours to check
                        await assert_accessible(page)
        finally:
            await ctx.close()


HOSTILE = """<style>
* { font-size: 22px !important; font-family: "Comic Sans MS", cursive !important; line-height: 3 !important;
    letter-spacing: 4px !important; text-transform: uppercase !important; color: lime !important;
    font-weight: 100 !important; word-spacing: 20px; text-align: right; text-shadow: 2px 2px red;
    text-decoration: underline wavy; white-space: pre; direction: rtl; cursor: wait; visibility: visible; }
a, span, img, div { display: block !important; padding: 30px !important; margin: 9px !important;
                    border: 5px solid red !important; }
.card, .title, .cta, .price { display: none !important; }
</style>"""


async def card_styles(page: Page, code: str) -> dict[str, Any]:
    return dict(await page.locator(f"{CARDS}[data-code='{code}']").evaluate("""card => {
        const props = ['font-size', 'font-family', 'font-weight', 'line-height', 'letter-spacing', 'word-spacing',
                       'text-transform', 'text-align', 'text-shadow', 'text-decoration-line', 'white-space',
                       'direction', 'color', 'background-color', 'display', 'padding', 'margin', 'border-top-width',
                       'cursor'];
        const out = {};
        for (const [name, node] of [['card', card], ['title', card.querySelector('.title')],
                                    ['price', card.querySelector('.price')], ['cta', card.querySelector('.cta')]]) {
            const cs = getComputedStyle(node);
            for (const p of props) out[`${name} ${p}`] = cs.getPropertyValue(p);
            const r = node.getBoundingClientRect();
            out[`${name} size`] = [Math.round(r.width), Math.round(r.height)];
        }
        return out;
    }"""))


async def test_host_page_css_does_not_reach_the_cards(webapp: WebApp, host_site: HostSite, page: Page,
                                                      tmp_path: Path) -> None:
    clip, video, (anchor,), _ = await placed_video(webapp, tmp_path, [None])
    src = host_site.add_video("/clip.webm", clip)
    plain = embed_page(webapp.base, src, "data-shoplink-video", video["id"])
    hostile = plain.replace("</head>", HOSTILE + "</head>")
    styles = []
    for path, html in (("/plain.html", plain), ("/hostile.html", hostile)):
        await page.goto(host_site.add_html(path, html))
        await page.wait_for_selector("#v[data-shoplink-ready='true']", state="attached")
        await seek(page, 1.0)
        await page.locator(f"{CARDS}[data-code='{anchor['code']}']").wait_for()
        styles.append(await card_styles(page, anchor["code"]))
    # The hostile rules really apply to the host page around the widget...
    assert await page.evaluate("() => getComputedStyle(document.querySelector('.after')).fontSize") == "22px"
    plain_styles, hostile_styles = styles
    assert plain_styles["title font-size"] == "14px"
    # ...and nothing of them reaches a card.
    assert hostile_styles == plain_styles, {k: (plain_styles[k], hostile_styles[k])
                                            for k in plain_styles if plain_styles[k] != hostile_styles[k]}
    await screenshot(page, "player-hostile-host")
