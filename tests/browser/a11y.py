"""axe-core (web/node_modules/axe-core, pinned in web/package.json) run inside the page under test.

The script is evaluated through the DevTools protocol (`page.evaluate`), which the page's strict
CSP does not govern, so nothing is added to the pages themselves. It also checks open shadow roots
(the widget's cards)."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page

from .conftest import ROOT

AXE_JS = ROOT / "web" / "node_modules" / "axe-core" / "axe.min.js"
BLOCKING = ("serious", "critical")


async def axe_violations(page: Page, *, exclude: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The serious and critical violations on the page as it is now: [{id, impact, nodes}]."""
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    found: list[dict[str, Any]] = await page.evaluate(
        """async (exclude) => {
            const context = exclude.length ? { exclude: exclude.map((s) => [s]) } : document;
            const r = await window.axe.run(context, { resultTypes: ['violations'] });
            return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map((n) => n.target.join(' ')) }));
        }""", list(exclude))
    return [v for v in found if v["impact"] in BLOCKING]


async def assert_accessible(page: Page, *, exclude: tuple[str, ...] = ()) -> None:
    violations = await axe_violations(page, exclude=exclude)
    assert not violations, violations


async def horizontal_overflow(page: Page) -> int:
    """How many CSS pixels the page scrolls sideways (0: it does not)."""
    return int(await page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - document.documentElement.clientWidth"))
