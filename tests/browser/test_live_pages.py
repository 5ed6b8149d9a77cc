"""Live pages beyond the happy path: 404 pages that stop the widget, an ended live in the console
(no Add/Remove, the replay attached) and for its viewers (the replay offered), sold-out cards."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, Request

from .a11y import assert_accessible
from .conftest import HostSite, WebApp, embed_page, screenshot, sign_in
from support.video_data import make_video
from support.web_data import seller_shop, upload_video
from support.web_media import make_webm

pytestmark = pytest.mark.browser

CARDS = "shoplink-overlay a.card"


async def test_missing_and_foreign_pages_are_404_pages(webapp: WebApp, host_site: HostSite, browser: Browser,
                                                       page: Page, tmp_path: Path) -> None:
    reply = await page.goto(f"{webapp.base}/watch/live/999")
    assert reply is not None and reply.status == 404
    assert reply.headers["content-type"].startswith("text/html")
    assert await page.text_content("#not-found") == "No such live"
    await assert_accessible(page)

    # An embed of a live that does not exist: the widget says so and stops (no reconnect loop).
    asked: list[str] = []

    def seen(request: Request) -> None:
        if "/v1/live/999" in request.url:
            asked.append(request.url)

    page.on("request", seen)
    await page.goto(host_site.add_html("/missing.html", embed_page(webapp.base, None, "data-shoplink-live", 999)))
    await page.wait_for_selector("#v[data-shoplink-status='missing']", state="attached")
    assert "not found" in (await page.locator("shoplink-overlay .badge").inner_text()).lower()
    assert len([u for u in asked if "/events" in u]) == 1 and len(asked) == 2, asked

    # A creator opening a seller's video and live console gets the 404 page, not the editor.
    shop = await seller_shop(await webapp.account("seller"), webapp.base)
    video = await upload_video(shop.seller, make_webm(tmp_path / "c.webm"), "Seller's own")
    live = await shop.seller.post("/api/v1/live", {"title": "Seller's live"})
    creator = await webapp.account("creator")
    ctx = await browser.new_context()
    try:
        other = await ctx.new_page()
        await sign_in(other, webapp.base, creator)
        for path in (f"/studio/videos/{video['id']}", f"/studio/live/{live.body['id']}", "/studio/videos/999999"):
            answer = await other.goto(webapp.base + path)
            assert answer is not None and answer.status == 404, path
            assert await other.locator("#not-found").count() == 1
            assert await other.locator("#anchor-form, #console").count() == 0
        await screenshot(other, "not-found-video")
    finally:
        await ctx.close()


async def test_ended_live_offers_the_replay_and_no_add_or_remove(
        webapp: WebApp, host_site: HostSite, browser: Browser, context: BrowserContext, page: Page,
        tmp_path: Path) -> None:
    shop = await seller_shop(await webapp.account("seller", name="Host Rae"), webapp.base)
    recording = await upload_video(shop.seller, make_webm(tmp_path / "rec.webm"), "Friday recording")
    live = (await shop.seller.post("/api/v1/live", {
        "title": "Friday drop", "product_ids": [p["id"] for p in shop.products[:2]]})).body
    first = shop.products[0]["id"]
    assert (await shop.seller.post(f"/api/v1/live/{live['id']}/start")).status == 200
    assert (await shop.seller.post(f"/api/v1/live/{live['id']}/pins", {"product_id": first})).status == 201

    # A viewer already watching on a shop's page, checking for the replay every 2 s after the end.
    viewer_ctx = await browser.new_context(viewport={"width": 390, "height": 844})
    try:
        viewer = await viewer_ctx.new_page()
        embed = embed_page(webapp.base, None, "data-shoplink-live", live["id"]).replace(
            'data-shoplink-live=', 'data-shoplink-poll="2" data-shoplink-live=')
        await viewer.goto(host_site.add_html("/live.html", embed))
        await viewer.wait_for_selector(f"{CARDS}", state="attached")

        await sign_in(page, webapp.base, shop.seller, f"/studio/live/{live['id']}")
        await page.wait_for_selector("#console[data-ready='true']")
        assert await page.locator("[data-action='remove']").count() == 2
        assert await page.locator("[data-action='remove']:enabled").count() == 1  # the unpinned one
        assert await page.locator("#add-section").is_visible()
        page.on("dialog", lambda dialog: dialog.accept())
        await page.click("#end-live")
        await page.wait_for_selector("#live-status.ended")
        await page.wait_for_selector("#replay-section:not([hidden])")
        assert await page.locator("[data-action='remove']").count() == 0
        assert not await page.locator("#add-section").is_visible()
        assert await page.locator(".set-item button[data-action='pin']:enabled").count() == 0
        await viewer.wait_for_selector("#v[data-shoplink-status='ended']", state="attached")
        assert await viewer.locator("shoplink-overlay a.offer").count() == 0  # nothing to offer yet

        await page.select_option("#replay-video", str(recording["id"]))
        await page.click("#replay-submit")
        await page.wait_for_selector("#replay-done:not([hidden])")
        assert await page.locator("#replay-form").is_hidden()
        await screenshot(page, "live-console-ended", docs=True)
        await assert_accessible(page)

        # The viewer who stayed is offered the replay in the player...
        offer = viewer.locator("shoplink-overlay a.offer")
        await offer.wait_for(timeout=20_000)
        assert await offer.get_attribute("href") == f"{webapp.base}/watch/live/{live['id']}/replay"
        # ...and so is one opening the viewer page now, in the page itself.
        await viewer.goto(f"{webapp.base}/watch/live/{live['id']}")
        await viewer.locator("#replay-offer a").click()
        await viewer.wait_for_url(f"{webapp.base}/watch/live/{live['id']}/replay")
        await viewer.wait_for_selector("#viewer-video[data-shoplink-ready='true']", state="attached")
        assert await viewer.evaluate("() => document.getElementById('viewer-video').dataset.shoplinkVideo") == \
            str(recording["id"])
        await viewer.wait_for_function("() => document.getElementById('viewer-video').readyState >= 1")
        anchors = (await shop.seller.get(f"/v1/videos/{recording['id']}/anchors")).body["anchors"]
        assert [a["product"]["id"] for a in anchors] == [first]
        await viewer.evaluate("""t => new Promise(done => { const v = document.getElementById('viewer-video');
            v.addEventListener('seeked', () => done(), {once: true}); v.currentTime = t; })""",
                              anchors[0]["start_s"] + 0.01)
        await viewer.locator(f"{CARDS}[data-code='{anchors[0]['code']}']").wait_for()
        await screenshot(viewer, "live-replay", docs=True)
        await assert_accessible(viewer)
    finally:
        await viewer_ctx.close()


async def test_sold_out_card_is_disabled(webapp: WebApp, host_site: HostSite, context: BrowserContext,
                                         page: Page) -> None:
    shop = await seller_shop(await webapp.account("seller"), webapp.base)
    live = (await shop.seller.post("/api/v1/live", {
        "title": "Sale", "product_ids": [shop.products[0]["id"]]})).body
    product = shop.products[0]["id"]
    await shop.seller.post(f"/api/v1/live/{live['id']}/start")
    await shop.seller.post(f"/api/v1/live/{live['id']}/pins", {"product_id": product})
    await page.goto(host_site.add_html("/sale.html", embed_page(webapp.base, None, "data-shoplink-live", live["id"])))
    card = page.locator(CARDS)
    await card.wait_for()
    assert await card.get_attribute("href") is not None
    reply = await shop.seller.patch(f"/api/v1/live/{live['id']}/pins/{product}", {"sold_out": True})
    assert reply.status == 200, reply.body
    await page.wait_for_selector(f"{CARDS}.sold-out")
    assert await card.get_attribute("href") is None
    assert await card.get_attribute("aria-disabled") == "true"
    assert "Sold out" in await card.inner_text()
    opened: list[Page] = []
    context.on("page", lambda new: opened.append(new))
    assert await card.is_disabled()  # what assistive technology is told too
    await card.click(force=True)
    assert page.url.startswith(host_site.base) and opened == []  # nothing opened, nowhere to go
    await screenshot(page, "player-sold-out")
    # Back in stock: a link again.
    await shop.seller.patch(f"/api/v1/live/{live['id']}/pins/{product}", {"sold_out": False})
    await page.wait_for_selector(f"{CARDS}:not(.sold-out)")
    assert await card.get_attribute("href") is not None


async def test_an_unplayable_upload_is_flagged_in_the_studio(webapp: WebApp, page: Page, tmp_path: Path) -> None:
    """An MPEG-4 Part 2 .mp4 (OpenCV's mp4v): uploaded through the studio, the editor says at once that
    browsers cannot play it and what to upload instead; a WebM says nothing."""
    creator = await webapp.account("creator")
    await sign_in(page, webapp.base, creator, "/studio")
    for clip, warned in ((make_video(tmp_path / "part2.mp4", seconds=1.0).path, True),
                         (make_webm(tmp_path / "fine.webm"), False)):
        await page.goto(f"{webapp.base}/studio")
        await page.set_input_files("#upload-file", str(clip))
        async with page.expect_navigation(url="**/studio/videos/*"):
            await page.click("#upload-button")
        await page.wait_for_selector("#timeline[data-ready='true']")
        warning = page.locator("#playback-warning")
        assert await warning.is_visible() is warned, clip
        if warned:
            text = await warning.inner_text()
            assert "Browsers cannot play this video" in text and "MPEG-4 Part 2" in text and "WebM" in text
            await screenshot(page, "studio-unplayable-warning", docs=True)
            await assert_accessible(page)
    await page.goto(f"{webapp.base}/studio")
    await page.wait_for_selector("#videos tbody tr")
    assert await page.locator("[data-unplayable='true']").count() == 1
