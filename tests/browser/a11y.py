"""Checks the viewer-page tests share: axe-core (through walk.axe_violations, which loads it from
our /vendor/axe-core/) and sideways scrolling."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.async_api import Page

from .walk import axe_violations


async def assert_accessible(page: Page) -> None:
    """No serious or critical axe-core violation on the page (one of ours) as it is now, shadow
    roots (the widget's cards) included."""
    url = urlsplit(page.url)
    violations = await axe_violations(page, f"{url.scheme}://{url.netloc}")
    assert not violations, violations


async def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the page scrolls sideways (0: it does not)."""
    return int(await page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - document.documentElement.clientWidth"))
