"""The player's events in Chromium, on a shop's page of another origin: an impression only
after a card has been at least 50 % visible for a second while the page is visible (once per
card per page view), one view on play, each quartile once, and the beacons flushed when the page
is hidden. The page's timers run on Playwright's paused clock, so "a second" is exact and no
test waits on the wall clock."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from playwright.async_api import Page, Request
from redis.asyncio import Redis

from .conftest import HostSite, WebApp, embed_page
from .test_player import CARDS, _video_with_anchors, seek
from support.funnel_data import wait_for_player_events
from support.wait import until
from support.web_data import seller_shop

pytestmark = pytest.mark.browser

SPACER = '<div id="spacer" style="height: 3000px"></div></body>'


class Beacons:
    """The events the page sent to /v1/events (read from the requests themselves)."""

    def __init__(self, page: Page) -> None:
        self.events: list[dict[str, Any]] = []
        self.page_views: set[str] = set()
        page.on("request", self._on_request)

    def _on_request(self, request: Request) -> None:
        if request.url.endswith("/v1/events") and request.method == "POST" and request.post_data:
            body = orjson.loads(request.post_data)
            self.page_views.add(body["pv"])
            self.events.extend(body["events"])

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["type"] == kind]


async def flush(page: Page) -> None:
    await page.evaluate("() => window.__shoplinkEvents.flush()")


async def pending(page: Page) -> list[str]:
    """Codes of the cards whose visible second is running."""
    result: list[str] = await page.evaluate("() => window.__shoplinkEvents.pending()")
    return sorted(result)


async def set_visibility(page: Page, state: str) -> None:
    """What the browser does when the tab is hidden or shown again (headless tabs stay visible)."""
    await page.evaluate("""s => { Object.defineProperty(document, 'visibilityState', {value: s, configurable: true});
                              Object.defineProperty(document, 'hidden', {value: s === 'hidden', configurable: true});
                              document.dispatchEvent(new Event('visibilitychange')); }""", state)


async def test_impressions_views_and_quartiles_once_on_another_origin(
        webapp: WebApp, host_site: HostSite, page: Page, redis: Redis, tmp_path: Path) -> None:
    clip, video, (first, second), _ = await _video_with_anchors(webapp, tmp_path)
    html = embed_page(webapp.base, host_site.add_video("/clip.webm", clip), "data-shoplink-video", video["id"])
    url = host_site.add_html("/shop.html", html.replace("</body>", SPACER))
    beacons = Beacons(page)
    await page.clock.install(time=datetime.now(UTC))
    await page.clock.pause_at(datetime.now(UTC))
    await page.goto(url)
    await page.wait_for_selector("#v[data-shoplink-ready='true']", state="attached")

    # Card 1 fully visible: its second starts; 0.9 s is not enough, 1 s is.
    await seek(page, 2.5)
    await page.locator(f"{CARDS}[data-code='{first['code']}']").wait_for()
    await until(lambda: _equals(pending(page), [first["code"]]), timeout=10, what="card 1 armed")
    await page.clock.run_for(900)
    await flush(page)
    assert beacons.of("impression") == []
    await page.clock.run_for(150)
    await flush(page)
    await until(lambda: _has(beacons, "impression", 1), timeout=10, what="the impression beacon")
    assert [e["code"] for e in beacons.of("impression")] == [first["code"]]

    # Card 2 scrolled out before its second is up: nothing; back in view for a second: one.
    await seek(page, 4.5)
    await until(lambda: _equals(pending(page), [second["code"]]), timeout=10, what="card 2 armed")
    await page.clock.run_for(500)
    await page.evaluate("() => window.scrollTo(0, 2500)")
    await until(lambda: _equals(pending(page), []), timeout=10, what="card 2 out of view")
    await page.clock.run_for(3000)
    await flush(page)
    assert len(beacons.of("impression")) == 1
    await page.evaluate("() => window.scrollTo(0, 0)")
    await until(lambda: _equals(pending(page), [second["code"]]), timeout=10, what="card 2 back")
    # ... and a hidden tab stops the second too
    await page.clock.run_for(600)
    await set_visibility(page, "hidden")
    assert await pending(page) == []
    await page.clock.run_for(3000)
    await set_visibility(page, "visible")
    await flush(page)
    assert len(beacons.of("impression")) == 1
    await page.clock.run_for(1050)
    await flush(page)
    await until(lambda: _has(beacons, "impression", 2), timeout=10, what="card 2's impression")

    # Card 1 again in the same page view: no second impression.
    await seek(page, 2.6)
    await page.clock.run_for(3000)
    await flush(page)
    assert sorted(e["code"] for e in beacons.of("impression")) == sorted([first["code"], second["code"]])

    # One view on play (however often it plays), quartiles once each.
    await page.evaluate("() => document.getElementById('v').play()")
    await page.evaluate("() => document.getElementById('v').pause()")
    await page.evaluate("() => document.getElementById('v').play()")
    await page.evaluate("() => document.getElementById('v').pause()")
    for t in (1.6, 3.1, 1.0, 4.6, 6.0, 1.0, 6.0):
        await seek(page, t)
    queued = await page.evaluate("() => window.__shoplinkEvents.queued()")
    assert [(e["type"], e.get("video"), e.get("q")) for e in queued] == [
        ("view", video["id"], None), ("progress", video["id"], 100)]
    # Queued, not sent yet: leaving the page (pagehide) sends them.
    await page.goto(host_site.base + "/nothing-here")
    # (Playwright does not report a beacon sent while the page unloads: the server's streams say.)
    streamed = await wait_for_player_events(redis, 7)
    assert sorted(e["type"] for e in streamed) == ["impression"] * 2 + ["progress"] * 4 + ["view"]
    assert [e["video_id"] for e in streamed if e["type"] == "view"] == [video["id"]]
    assert sorted(e["quartile"] for e in streamed if e["type"] == "progress") == [25, 50, 75, 100]
    assert {e["_batch"]["page_view"] for e in streamed} == beacons.page_views
    # (Chromium sends a beacon of an unloading page with its own User-Agent, not the context's
    # override: HeadlessChrome, a bot; the others are the test's human viewer.)
    assert {e["_batch"]["ua_class"] for e in streamed if e["type"] == "impression"} == {"human"}
    # what was sent before the page was left, once each
    sent_before = [(e["type"], e.get("q"), e.get("code")) for e in beacons.events]
    assert len(sent_before) == len(set(sent_before)) and "view" not in {kind for kind, _, _ in sent_before}


async def _equals(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def _has(beacons: Beacons, kind: str, n: int) -> bool:
    return len(beacons.of(kind)) >= n


async def test_the_live_viewer_sends_a_view_on_joining_and_card_impressions(
        webapp: WebApp, page: Page, redis: Redis) -> None:
    seller = await webapp.account("seller")
    shop = await seller_shop(seller, webapp.base)
    product = shop.products[0]["id"]
    live = await seller.post("/api/v1/live", {"title": "Friday live", "product_ids": [product]})
    assert live.status == 201, live.body
    live_id = live.body["id"]
    assert (await seller.post(f"/api/v1/live/{live_id}/start")).status == 200
    pinned = await seller.post(f"/api/v1/live/{live_id}/pins", {"product_id": product})
    assert pinned.status == 201, pinned.body
    await page.goto(f"{webapp.base}/watch/live/{live_id}")
    await page.locator(CARDS).wait_for()
    # the card stays in view: its impression is sent after a second (real time here: the widget's
    # event stream reconnects on timers), and leaving the page flushes the beacon
    await until(lambda: _equals(page.evaluate("() => window.__shoplinkEvents.queued().length"), 2),
                timeout=10, what="the view and the card's impression queued")
    await page.goto(f"{webapp.base}/healthz")
    streamed = await wait_for_player_events(redis, 2)
    assert sorted(e["type"] for e in streamed) == ["impression", "view"]
    assert {e["live_session_id"] for e in streamed} == {live_id}
    assert [e["product_id"] for e in streamed if e["type"] == "impression"] == [product]
