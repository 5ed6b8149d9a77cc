"""The home page at `/`, signed out and signed in, at desktop and phone sizes."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser

from .conftest import WebApp
from .walk import sign_in_as, walker

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("size", ["desktop", "phone"])
async def test_home_page_signed_out_and_in(webapp: WebApp, browser: Browser, size: str) -> None:
    seller = await webapp.account("seller", name="Home Hana")
    async with walker(browser, webapp.base, size) as w:
        await w.goto("/")
        assert await w.page.title() == "shoplink · shoppable videos and lives"
        await w.page.wait_for_selector("#home-demo[href='/demo']")
        assert await w.page.get_attribute("#home-signin", "href") == "/signin?next=/dashboard"
        await w.check("home")

        await w.page.click("#home-signin")
        await w.page.wait_for_selector("#token")
        await sign_in_as(w, seller.token or "", "/")
        await w.page.wait_for_selector("#home-who:has-text('Home Hana')")
        links = await w.page.eval_on_selector_all(".next-steps a", "els => els.map(e => e.getAttribute('href'))")
        assert links[:2] == ["/shops", "/plans"] and "/marketplace" not in links  # a seller's next steps
        await w.check("home-signed-in")
