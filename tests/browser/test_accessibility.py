"""Accessibility beyond the business walk: the other signed-in pages pass axe-core (no serious or
critical violation) at both sizes; the business pages work from the keyboard alone; a disabled
button looks disabled."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Browser

from shoplink.web.demo_media import make_webm

from .conftest import WebApp
from .walk import sign_in_as, walker
from support.web_data import seller_shop, upload_video

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("size", ["desktop", "phone"])
async def test_other_pages_pass_axe(webapp: WebApp, browser: Browser, tmp_path: Path, size: str) -> None:
    shop = await seller_shop(await webapp.account("seller", "creator", name=f"Axe Ada {size}"), webapp.base)
    video = await upload_video(shop.seller, make_webm(tmp_path / "axe.webm", scenes=2), "Axe haul")
    live = await shop.seller.post("/api/v1/live", {"title": "Axe live", "product_ids": [shop.products[0]["id"]]})
    assert live.status == 201, live.body
    async with walker(browser, webapp.base, size) as w:
        await w.goto("/signin")
        await w.check("signin")
        await sign_in_as(w, shop.seller.token or "", "/studio")
        await w.page.wait_for_selector(f"#videos tr[data-video-id='{video['id']}']")
        await w.check("studio")
        await w.goto("/studio/live")
        await w.page.wait_for_selector("text=Axe live")
        await w.check("live-list")
        await w.goto(f"/studio/live/{live.body['id']}")
        await w.page.wait_for_selector("#console[data-ready='true']")
        await w.check("live-console")
        await w.goto(f"/dashboard/videos/{video['id']}")
        await w.page.wait_for_selector("#dash-title:has-text('Axe haul')")
        await w.page.wait_for_selector("#dashboard[data-loaded]")
        await w.check("dashboard-video")
        await w.goto(f"/dashboard/shops/{shop.shop_id}")
        await w.page.wait_for_selector("#dash-title:has-text('Shop: Browser Shop')")
        await w.check("dashboard-shop")


async def test_business_pages_work_from_the_keyboard(webapp: WebApp, browser: Browser) -> None:
    seller = await webapp.account("seller", name="Keys Kim")
    async with walker(browser, webapp.base, "desktop") as w:
        await sign_in_as(w, seller.token or "", "/shops")
        await w.page.wait_for_selector("#shops-list .empty")
        # Tab from the page's start: the header's links, then the form's fields in order.
        await w.page.focus("#shop-name")
        await w.page.keyboard.type("Keyboard Shop")
        await w.page.keyboard.press("Tab")
        assert await w.page.evaluate("() => document.activeElement.id") == "shop-domain"
        await w.page.keyboard.type("127.0.0.1")
        await w.page.keyboard.press("Tab")
        assert await w.page.evaluate("() => document.activeElement.id") == "shop-fallback"
        await w.page.keyboard.press("Tab")
        assert await w.page.evaluate("() => document.activeElement.id") == "shop-create"
        async with w.page.expect_navigation():
            await w.page.keyboard.press("Enter")
        await w.page.wait_for_selector("#shop-title:has-text('Keyboard Shop')")
        # A focused button shows where the focus is (an outline), and Enter works it.
        await w.page.focus("#edit-name")
        await w.page.keyboard.press("End")
        await w.page.keyboard.type(" 2")
        await w.page.keyboard.press("Enter")  # submits the form it is in
        await w.page.wait_for_selector("#shop-title:has-text('Keyboard Shop 2')")
        await w.page.focus("#shop-save")
        outline = await w.page.eval_on_selector("#shop-save", "b => getComputedStyle(b).outlineStyle")
        assert outline != "none"
        await w.check("shop-keyboard")


async def test_disabled_buttons_look_disabled(webapp: WebApp, browser: Browser) -> None:
    seller = await webapp.account("seller", name="Dim Dee")
    shop = await seller.post("/api/v1/shops", {"name": "Dim", "domains": ["127.0.0.1"]})
    async with walker(browser, webapp.base, "desktop") as w:
        await sign_in_as(w, seller.token or "", f"/shops/{shop.body['id']}/products")
        await w.page.wait_for_selector("#products .empty")
        styles = await w.page.evaluate("""() => ['csv-import', 'csv-check'].map((id) => {
            const s = getComputedStyle(document.getElementById(id));
            return [document.getElementById(id).disabled, s.backgroundColor, s.cursor]; })""")
        (off, off_bg, off_cursor), (on, on_bg, on_cursor) = styles
        assert off and not on
        assert off_bg != on_bg and off_cursor == "not-allowed" and on_cursor == "pointer"
