"""Walking pages like a user: each visited page is checked (no horizontal scroll, no console error,
no serious or critical axe-core violation) and saved as a screenshot under one folder of the run,
artifacts/screenshots/walk/ (docs/web.md lists them)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page, ViewportSize

from .conftest import PHONE, SCREENSHOTS, human_user_agent, watch_csp

WALK_DIR = SCREENSHOTS / "walk"
DESKTOP: ViewportSize = {"width": 1280, "height": 860}
SIZES: dict[str, ViewportSize] = {"desktop": DESKTOP, "phone": PHONE}
# axe-core impacts that fail a page (moderate and minor ones are reported by axe but tolerated).
FAILING_IMPACTS = ("serious", "critical")


@dataclass
class Walker:
    """One browser context at one size; every `check` of a page adds to `problems`."""
    context: BrowserContext
    page: Page
    size: str
    base: str
    console_errors: list[str] = field(default_factory=list)
    csp: list[str] = field(default_factory=list)
    shots: list[Path] = field(default_factory=list)

    async def goto(self, path: str) -> None:
        await self.page.goto(self.base + path)

    async def check(self, name: str) -> Path:
        """Assert the page as it is now is usable and accessible; save its screenshot."""
        await self.page.wait_for_load_state("networkidle")
        overflow = await self.page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert overflow[0] <= overflow[1], f"{name} ({self.size}) scrolls sideways: {overflow}"
        violations = await axe_violations(self.page, self.base)
        assert not violations, f"{name} ({self.size}): {violations}"
        assert not self.console_errors, f"{name} ({self.size}): {self.console_errors}"
        assert not self.csp, f"{name} ({self.size}): {self.csp}"
        WALK_DIR.mkdir(parents=True, exist_ok=True)
        path = WALK_DIR / f"{name}-{self.size}.png"
        await self.page.screenshot(path=str(path), full_page=True, animations="disabled")
        self.shots.append(path)
        return path


async def axe_violations(page: Page, base: str) -> list[dict[str, Any]]:
    """axe-core (served from /vendor/axe-core/, our own origin, so the page's CSP allows it) run on
    the page: its serious and critical violations, each with the selectors of the offending nodes."""
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.add_script_tag(url=f"{base}/vendor/axe-core/axe.min.js")
    found: list[dict[str, Any]] = await page.evaluate(
        """async (impacts) => {
             const r = await window.axe.run(document, { resultTypes: ['violations'] });
             return r.violations.filter((v) => impacts.includes(v.impact)).map((v) => ({
               id: v.id, impact: v.impact, help: v.help,
               nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ')) }));
           }""", list(FAILING_IMPACTS))
    return found


@asynccontextmanager
async def walker(browser: Browser, base: str, size: str) -> AsyncIterator[Walker]:
    viewport = SIZES[size]
    ctx = await browser.new_context(viewport=viewport, user_agent=human_user_agent(browser),
                                    has_touch=size == "phone", is_mobile=False)
    csp = await watch_csp(ctx)
    pg = await ctx.new_page()
    w = Walker(ctx, pg, size, base, csp=csp)
    pg.on("pageerror", lambda exc: w.console_errors.append(f"pageerror: {exc}"))
    pg.on("console", lambda msg: w.console_errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    try:
        yield w
    finally:
        await ctx.close()


async def sign_in_as(w: Walker, token: str, next_path: str) -> None:
    await w.goto(f"/signin?next={next_path}")
    await w.page.fill("#token", token)
    async with w.page.expect_navigation():
        await w.page.click("button[type=submit]")
