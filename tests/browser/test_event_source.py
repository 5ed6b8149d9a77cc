"""A standard client of the live event stream: Chromium's own EventSource, no code of ours.
Once the live has ended it gets the final state and the `end` once, reconnects (as the standard
says, with Last-Event-ID), gets 204 and stops for good: it used to reconnect every 2 s forever."""

from __future__ import annotations

import pytest
from playwright.async_api import Page

from .conftest import WebApp
from support.wait import until

pytestmark = pytest.mark.browser

LISTEN = """(url) => {
  window.seen = [];
  const es = new EventSource(url);
  window.es = es;
  for (const type of ['state', 'start', 'pin', 'unpin', 'sold_out', 'end']) {
    es.addEventListener(type, (e) => window.seen.push([type, e.lastEventId]));
  }
}"""


async def test_a_standard_event_source_stops_after_the_end(webapp: WebApp, page: Page) -> None:
    host = await webapp.account("seller")
    live = await host.post("/api/v1/live", {"title": "Ended"})
    assert live.status == 201, live.body
    live_id = live.body["id"]
    for step in ("start", "end"):
        assert (await host.post(f"/api/v1/live/{live_id}/{step}")).status == 200
    await page.goto(f"{webapp.base}/signin")  # same origin as the stream
    await page.evaluate(LISTEN, f"/v1/live/{live_id}/events")

    async def closed() -> bool:
        return bool(await page.evaluate("window.es.readyState === EventSource.CLOSED"))

    await until(closed, timeout=15, interval=0.2, what="EventSource closed after the 204")
    assert await page.evaluate("window.seen") == [["state", "2"], ["end", "2"]]
