"""Click handling: resolve -> answer -> record.

Per click the work is a cache lookup, a ULID, an HMAC of the viewer cookie (and a new cookie
when the viewer has none), three LRU lookups (user agent class, network hash, referrer host),
orjson of the click's own fields appended to the anchor's prebuilt prefix, a list append, and the
302 as one preformatted message (redirect.py). Nothing per click touches PostgreSQL or waits on
Redis; bench/results/clicks.md has the measurements.

A request for an unknown code (no such anchor) is answered 404 and only counted
(`shoplink_click_redirects_total{outcome="not_found"}`): it writes no event, so a flood of junk
codes costs Redis nothing (docs/security.md, "Junk codes").
"""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.http import HttpVersion11

from shoplink.aiohttp_internals import PreformattedResponse
from shoplink.clicks.classify import Classifier, default_classifier
from shoplink.clicks.events import encode, live_playback, video_playback
from shoplink.clicks.redirect import NO_STORE, redirect_message
from shoplink.clicks.resolver import Resolver, Target
from shoplink.clicks.viewer import ViewerIds, referrer_host
from shoplink.config import Settings
from shoplink.delivery.writer import ClickWriter
from shoplink.errors import error_body
from shoplink.ids import new_ulid_and_ms
from shoplink.metrics import Registry

log = logging.getLogger(__name__)

OUTCOMES = ("redirected", "fallback", "gone", "not_found")

_PAGES = {
    "not_found": ("Link not found", "This link does not exist. Check the address, or go back to the video."),
    "gone": ("Product no longer available", "This product is no longer offered through this link."),
    "not_active": ("Link not active yet", "This link is not active yet: the shop is still confirming "
                   "that its website is its own. Try again later, or go back to the video."),
}
_JSON_CODES = {"not_found": ("not_found", "unknown link code"),
               "gone": ("gone", "this product is no longer available"),
               "not_active": ("link_not_active", "this link is not active yet (the shop's domain is not verified)")}


def _html_page(page: str) -> bytes:
    title, text = _PAGES[page]
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<meta name="robots" content="noindex"><title>{title}</title></head>'
            f"<body><h1>{title}</h1><p>{text}</p></body></html>").encode()


_HTML = {page: _html_page(page) for page in _PAGES}
_JSON = {page: error_body(code, message) for page, (code, message) in _JSON_CODES.items()}


class ClickService:
    def __init__(self, settings: Settings, resolver: Resolver, writer: ClickWriter, *,
                 classifier: Classifier | None = None) -> None:
        self.resolver = resolver
        self.writer = writer
        self.viewers = ViewerIds(settings.secret_key,
                                 secure=settings.public_base_url.startswith("https:"))
        self._classify = (classifier or default_classifier()).classify
        self.outcomes = dict.fromkeys(OUTCOMES, 0)
        self.head_requests = 0

    async def click(self, request: web.BaseRequest, code: str) -> web.StreamResponse:
        """GET or HEAD /r/{code}: from the route (views.py) or the server's fast dispatch."""
        target = self.resolver.get(code) or await self.resolver.resolve(code)
        return self.answer(request, target)

    def answer(self, request: web.BaseRequest, target: Target) -> web.StreamResponse:
        """The response to a click on `target`; records the click (GET only).

        One function on purpose: every call and attribute lookup is paid per click
        (instruction counts in bench/results/clicks.md)."""
        headers = request.headers
        event_id, ts_ms = new_ulid_and_ms()  # one clock read: the id and ts_ms agree
        viewers = self.viewers
        cookie_header = headers.get("Cookie")
        cookie = viewers.from_cookie_header(cookie_header) if cookie_header else None
        new_viewer = cookie is None
        set_cookie = None
        if cookie is None:
            cookie, set_cookie = viewers.issue(
                secure_request=not viewers.always_secure and request.secure)
        head = target.head
        location = None if head is None else f"{head}{event_id}{target.tail}"
        method = request.method
        if method == "HEAD":  # link checkers and previews: answered, not counted
            self.head_requests += 1
        elif target.unknown:  # junk: counted here (/metrics), never one stream entry per request
            self.outcomes["not_found"] += 1
        else:
            ua_class, ua_family = self._classify(headers.get("User-Agent", ""))
            if target.video_duration_s is not None:
                if "?" in request.raw_path:
                    playback, t_status = video_playback(request.query.get("t"), target.video_duration_s)
                else:
                    playback, t_status = None, "absent"  # what video_playback(None, ...) says
            else:
                playback, t_status = live_playback(target.live_started_s, ts_ms / 1000)
            self.writer.record(target.shard, encode(
                target.prefix, event_id, ts_ms, viewers.viewer_hash(cookie), new_viewer,
                viewers.network_hash(request.remote), ua_class, ua_family,
                referrer_host(headers.get("Referer")), playback, t_status))
            self.outcomes[target.outcome] += 1
        status = target.status
        # The preformatted message is exactly what aiohttp would send for a GET over HTTP/1.1 on
        # a connection that stays open (redirect.py); anything else takes aiohttp's path.
        if (status == 302 and location is not None and method == "GET"
                and request.version == HttpVersion11 and request.keep_alive):
            return PreformattedResponse(302, redirect_message(location, set_cookie, ts_ms // 1000))
        out = {"Cache-Control": NO_STORE}
        if set_cookie is not None:
            out["Set-Cookie"] = set_cookie
        if location is not None:
            out["Location"] = location
        if status == 302:
            return web.Response(status=302, headers=out)
        page = target.page or "gone"
        if "application/json" in headers.get("Accept", ""):
            return web.Response(status=status, headers=out, body=_JSON[page],
                                content_type="application/json")
        return web.Response(status=status, headers=out, body=_HTML[page], content_type="text/html",
                            charset="utf-8")

    # ---- metrics ---------------------------------------------------------------------------

    def register_metrics(self, registry: Registry) -> None:
        redirects = registry.counter("shoplink_click_redirects_total",
                                     "Clicks answered on /r/{code}, by outcome (HEAD excluded).")
        head = registry.counter("shoplink_click_head_requests_total", "HEAD requests on /r/{code}.")
        written = registry.counter("shoplink_click_events_written_total",
                                   "Click events acknowledged by Redis (replays included).")
        buffered = registry.gauge("shoplink_click_events_buffered", "Click events waiting in memory.")
        spooled = registry.counter("shoplink_click_events_spooled_total",
                                   "Click events written to the local spool (Redis down or slow).")
        replayed = registry.counter("shoplink_click_events_replayed_total",
                                    "Spooled click events written to Redis afterwards.")
        spool_bytes = registry.gauge("shoplink_click_spool_pending_bytes",
                                     "Bytes of spooled click events not yet replayed.")
        dropped = registry.counter("shoplink_click_events_dropped_total",
                                   "Click events lost because Redis was down and the spool full "
                                   "(reason=spool_full) or unwritable (reason=spool_error). Alert on it.")
        unjournaled = registry.counter("shoplink_click_events_unjournaled_total",
                                       "Click events the spool file could not take (full or unwritable): "
                                       "shipped from memory only, not safe from a crash.")
        settled = registry.counter("shoplink_click_events_settled_total",
                                   "Events of a batch sent without an answer found in Redis already "
                                   "(not sent again).")
        redis_up = registry.gauge("shoplink_click_redis_up", "1 when the last click flush reached Redis.")
        flush = registry.summary("shoplink_click_flush_seconds",
                                 "Duration of one pipelined write of a batch of click events.")
        cache = registry.counter("shoplink_click_cache_total",
                                 "Resolver cache lookups by result (hit, negative_hit, miss, stale: "
                                 "served past its TTL while PostgreSQL is down).")
        loads = registry.counter("shoplink_click_cache_loads_total",
                                 "PostgreSQL queries made by the click resolver (batched misses).")
        size = registry.gauge("shoplink_click_cache_entries", "Anchor codes in the resolver cache.")

        async def collect() -> None:
            for outcome, count in self.outcomes.items():
                redirects.set(count, outcome=outcome)
            head.set(self.head_requests)
            w = self.writer
            written.set(w.written)
            buffered.set(w.buffered)
            spooled.set(w.spooled)
            replayed.set(w.replayed)
            spool_bytes.set(w.spool_bytes)
            for reason, count in w.dropped.items():
                dropped.set(count, reason=reason)
            unjournaled.set(w.unjournaled)
            settled.set(w.settled)
            redis_up.set(1 if w.redis_ok else 0)
            flush.values[(("__part", "count"),)] = w.flushes
            flush.values[(("__part", "sum"),)] = w.flush_seconds
            r = self.resolver
            cache.set(r.hits, result="hit")
            cache.set(r.negative_hits, result="negative_hit")
            cache.set(r.misses, result="miss")
            cache.set(r.stale_hits, result="stale")
            loads.set(r.loads)
            size.set(r.size)

        registry.register_collector(collect)
