"""Creator studio in the browser: upload with progress, then anchor a product on the timeline by
dragging a range (snapped to scene cuts), move, resize and delete it; the API sees every change."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Page

from .conftest import WebApp, screenshot, sign_in
from support.api import Api
from support.wait import until
from support.web_data import seller_shop
from support.web_media import make_webm

pytestmark = pytest.mark.browser


async def drag(page: Page, x0: float, x1: float, y: float) -> None:
    await page.mouse.move(x0, y)
    await page.mouse.down()
    await page.mouse.move((x0 + x1) / 2, y, steps=4)
    await page.mouse.move(x1, y, steps=4)
    await page.mouse.up()


async def changed(who: Api, path: str, before: dict[str, Any]) -> dict[str, Any]:
    """The resource once its updated_at moved on (the page's PATCH landed); bounded polling."""
    async def moved_on() -> dict[str, Any] | None:
        now = (await who.get(path)).body
        return dict(now) if now["updated_at"] != before["updated_at"] else None

    return await until(moved_on, timeout=15, interval=0.05, what=f"{path} changes")


async def test_upload_then_anchor_on_the_timeline(webapp: WebApp, page: Page, tmp_path: Path) -> None:
    shop = await seller_shop(await webapp.account("seller", name="Studio Sam"), webapp.base)
    seller = shop.seller
    clip = make_webm(tmp_path / "haul.webm")  # 3 scenes of 2 s: cuts at 2 s and 4 s
    await sign_in(page, webapp.base, seller, "/studio")
    await page.set_input_files("#upload-file", str(clip))
    await page.fill("#upload-title", "Spring haul")
    await page.click("#upload-button")
    await page.wait_for_url(re.compile(r"/studio/videos/\d+$"))
    video_id = int(page.url.rsplit("/", 1)[1])
    await page.wait_for_selector("#timeline[data-ready='true']")
    cuts = (await seller.get(f"/api/v1/videos/{video_id}/scenes")).body["cuts"]
    inner = [c for c in cuts if 0 < c < 6]
    assert inner and await page.locator("#cuts .cut").count() == len(inner)
    await page.wait_for_selector("#timeline[data-thumbs='ready']")
    duration = (await seller.get(f"/api/v1/videos/{video_id}")).body["duration_s"]

    await page.locator("#timeline").scroll_into_view_if_needed()
    box = await page.locator("#thumbs").bounding_box()
    assert box
    left, width = box["x"], box["width"]

    def x(t: float) -> float:
        return float(left + width * t / duration)

    y = box["y"] + box["height"] / 2
    first_cut = min(inner, key=lambda c: abs(c - 2.0))
    # Drag a range that starts just before the first cut: the start snaps onto it.
    await drag(page, x(first_cut - 0.1), x(first_cut + 1.5), y)
    assert float(await page.input_value("#start")) == pytest.approx(first_cut)

    # No product chosen: the error shows next to the product field, nothing is sent.
    await page.click("#anchor-submit")
    assert "product" in (await page.text_content("[data-error-for='product_id']") or "")
    # A search that finds nothing says where products come from.
    await page.fill("#product-search", "no such thing")
    hint = page.locator("#product-hint")
    await hint.wait_for(state="visible")
    assert "No products match" in (await hint.text_content() or "")
    assert await hint.locator("a[href='/marketplace']").count() == 1
    assert await page.locator("#product-results li").count() == 0
    await page.fill("#product-search", "sneak")
    await page.click("#product-results li:has-text('Trail Runner Sneakers')")
    assert await hint.is_hidden()
    await page.click("#anchor-submit")
    await page.wait_for_selector("#anchors tbody tr")
    anchors = (await seller.get(f"/api/v1/videos/{video_id}/anchors")).body["items"]
    assert len(anchors) == 1
    anchor = anchors[0]
    assert anchor["product_id"] == shop.products[0]["id"]
    assert anchor["start_s"] == pytest.approx(first_cut)
    row = page.locator(f"#anchors tr[data-anchor-id='{anchor['id']}']")
    assert anchor["link"] in await row.inner_text()
    await page.wait_for_function(
        "() => [...document.querySelectorAll('img.qr')].every(i => i.complete && i.naturalWidth > 0)")
    await screenshot(page, "studio-editor", docs=True, full_page=True)

    # Move it by dragging the bar's body (one second later).
    bar = page.locator(f".anchor-bar[data-anchor-id='{anchor['id']}']")
    await page.locator("#timeline").scroll_into_view_if_needed()
    box = await page.locator("#thumbs").bounding_box()
    assert box
    bar_box = await bar.bounding_box()
    assert bar_box
    start, end = anchor["start_s"], anchor["end_s"]
    await drag(page, bar_box["x"] + bar_box["width"] / 2, bar_box["x"] + bar_box["width"] / 2 + (x(1) - x(0)),
               bar_box["y"] + bar_box["height"] / 2)
    moved = await changed(seller, f"/api/v1/videos/{video_id}/anchors/{anchor['id']}", anchor)
    assert moved["end_s"] - moved["start_s"] == pytest.approx(end - start, abs=0.02)
    assert moved["start_s"] == pytest.approx(start + 1, abs=0.3)

    # Resize: drag the right edge to the end of the video (it snaps to the end).
    handle = await bar.locator(".handle.r").bounding_box()
    assert handle
    await drag(page, handle["x"] + 3, x(duration - 0.1), handle["y"] + handle["height"] / 2)
    resized = await changed(seller, f"/api/v1/videos/{video_id}/anchors/{anchor['id']}", moved)
    assert resized["end_s"] == pytest.approx(duration, abs=0.01) and resized["start_s"] == moved["start_s"]

    # A server-side validation error shows next to its field.
    await bar.click()
    await page.fill("#end", str(duration + 50))
    await page.click("#anchor-submit")
    await page.wait_for_selector("[data-error-for='end_s']:not(:empty)")

    # Delete (archive) from the keyboard.
    await page.click("#anchor-cancel")
    page.on("dialog", lambda dialog: dialog.accept())
    await bar.focus()
    await page.keyboard.press("Delete")
    await page.wait_for_selector("#anchors-empty:not([hidden])")
    left = (await seller.get(f"/api/v1/videos/{video_id}/anchors?status=all")).body["items"]
    assert [a["status"] for a in left] == ["archived"]
