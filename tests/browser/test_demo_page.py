"""The quick-start path: `shoplink demo` seeds a playable demo video; /demo shows it with cards."""

from __future__ import annotations

import argparse

import orjson
import pytest
from playwright.async_api import BrowserContext, Page

from shoplink.demo import seed_demo

from .conftest import WebApp, screenshot

pytestmark = pytest.mark.browser


async def test_demo_page_plays_with_cards_and_clicks_through(webapp: WebApp, context: BrowserContext, page: Page,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    nothing = await page.goto(f"{webapp.base}/demo")
    assert nothing is not None and nothing.status == 404  # nothing seeded yet
    await seed_demo(webapp.settings, argparse.Namespace(quiet=False))
    seeded = orjson.loads(capsys.readouterr().out)
    assert seeded["demo_url"] == f"{webapp.base}/demo"

    await page.goto(seeded["demo_url"])
    await page.wait_for_selector("#viewer-video[data-shoplink-ready='true']", state="attached")
    await page.evaluate("""() => new Promise(done => { const v = document.getElementById('viewer-video');
        v.addEventListener('seeked', () => done(), {once: true}); v.currentTime = 4; })""")
    card = page.locator("shoplink-overlay a.card")
    await card.wait_for()
    assert "Canvas Weekender Bag" in await card.inner_text()
    await screenshot(page, "demo-page", docs=True)
    async with context.expect_page() as opened:
        await card.click()
    shop_page = await opened.value
    await shop_page.wait_for_load_state()
    assert shop_page.url.startswith(f"{webapp.base}/demo/shop/products/2?")
    assert await shop_page.text_content("td[data-param='utm_source']") == "shoplink"
