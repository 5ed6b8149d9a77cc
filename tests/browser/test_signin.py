"""Sign in with an API token in a real browser, use the session, sign out."""

from __future__ import annotations

import pytest
from playwright.async_api import Page

from .conftest import WebApp, screenshot, sign_in

pytestmark = pytest.mark.browser


async def test_sign_in_and_out(webapp: WebApp, page: Page) -> None:
    creator = await webapp.account("creator", name="Browser Bea")
    await page.goto(f"{webapp.base}/studio")
    assert "/signin?next=/studio" in page.url  # signed out: sent to sign-in, and back afterwards
    await page.fill("#token", "slk_wrong")
    await page.click("button[type=submit]")
    await page.wait_for_selector("#signin-error:has-text('not valid')")
    await screenshot(page, "signin-error")

    await sign_in(page, webapp.base, creator, "/studio")
    assert page.url == f"{webapp.base}/studio"
    await page.wait_for_selector("#who-name:has-text('Browser Bea')")
    # The token is nowhere the page's scripts can reach; the session cookie is HttpOnly.
    leaks = await page.evaluate("""() => [document.cookie, JSON.stringify(localStorage),
                                         JSON.stringify(sessionStorage)].join(' ')""")
    assert "slk_" not in leaks and "sl_session" not in leaks
    cookies = await page.context.cookies()
    session_cookie = next(c for c in cookies if c["name"] == "sl_session")
    assert session_cookie["httpOnly"] and session_cookie["sameSite"] == "Lax"
    await screenshot(page, "studio-empty")

    await page.click("#signout")
    await page.wait_for_url(f"{webapp.base}/signin")
    assert not [c for c in await page.context.cookies() if c["name"] == "sl_session"]
    await page.goto(f"{webapp.base}/studio")
    assert "/signin" in page.url
