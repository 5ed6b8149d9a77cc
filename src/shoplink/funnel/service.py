"""POST /v1/events: the player's events, checked, resolved, limited and queued for the streams.

Per request: the body (at most 64 KB), one orjson parse, the schema check (validate.py), then
per event a dictionary lookup for its card (the click resolver's cache) or its video / live
session (`SurfaceCache`), the page view's repeat check and the client's budget. The accepted
events of each shard become ONE stream entry (schemas/events/stream_batch.schema.json) handed to
the event writer (the clicks' delivery: buffer, pipelined XADD, spool on outage); nothing waits
on Redis, and PostgreSQL only on a cache miss.

Limits (per server process; every dropped event is counted in
`shoplink_player_events_dropped_total{reason}`):
- `unknown`: a card code, video or live session that does not exist: never streamed;
- `repeat`: the same impression (card), view (video / live) or quartile again in one page view
  (the player sends each once; a forged or replayed beacon does not count twice);
- `page_view_limit`: more than SHOPLINK_EVENTS_MAX_PER_PAGE_VIEW events in one page view;
- `client_limit`: beyond SHOPLINK_EVENTS_CLIENT_PER_S events per second (burst
  SHOPLINK_EVENTS_CLIENT_BURST) from one client network (the /24 or /48 the click's `net` hashes).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import asyncpg
import orjson

from shoplink.clicks.classify import Classifier, default_classifier
from shoplink.clicks.events import live_playback
from shoplink.clicks.resolver import Resolver
from shoplink.clicks.viewer import ViewerIds, referrer_host
from shoplink.config import Settings
from shoplink.delivery.writer import ClickWriter
from shoplink.funnel import repository as repo
from shoplink.funnel.models import DROP_REASONS, STREAM_SCHEMA_VERSION, Surface
from shoplink.funnel.validate import Beacon
from shoplink.ids import new_ulid_and_ms
from shoplink.metrics import Registry

log = logging.getLogger(__name__)

SURFACE_TTL_S = 60.0
SURFACE_NEGATIVE_TTL_S = 10.0
SURFACE_CACHE_MAX = 100_000
CLIENTS_MAX = 100_000


class SurfaceCache:
    """(kind, id) -> the video or live session, or None when there is none; cached for a minute
    (ten seconds for "none"), bounded."""

    def __init__(self, pool: asyncpg.Pool, *, max_size: int = SURFACE_CACHE_MAX) -> None:
        self._pool = pool
        self._max = max_size
        self._entries: OrderedDict[tuple[str, int], tuple[Surface | None, float]] = OrderedDict()
        self.loads = 0

    def get(self, kind: str, surface_id: int) -> tuple[bool, Surface | None]:
        """(found in the cache, the surface)."""
        entry = self._entries.get((kind, surface_id))
        if entry is None or entry[1] < time.monotonic():
            return False, None
        return True, entry[0]

    async def load(self, kind: str, surface_id: int) -> Surface | None:
        self.loads += 1
        async with self._pool.acquire() as con:
            found = await (repo.videos if kind == "video" else repo.live_sessions)(con, [surface_id])
        surface = found[0] if found else None
        ttl = SURFACE_TTL_S if surface is not None else SURFACE_NEGATIVE_TTL_S
        self._entries[(kind, surface_id)] = (surface, time.monotonic() + ttl)
        if len(self._entries) > self._max:
            self._entries.popitem(last=False)
        return surface

    def forget(self, kind: str, surface_id: int) -> None:
        self._entries.pop((kind, surface_id), None)


class _PageView:
    __slots__ = ("count", "seen")

    def __init__(self) -> None:
        self.count = 0
        self.seen: set[tuple[Any, ...]] = set()


class FunnelService:
    def __init__(self, settings: Settings, resolver: Resolver, surfaces: SurfaceCache,
                 writer: ClickWriter, *, classifier: Classifier | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.resolver = resolver
        self.surfaces = surfaces
        self.writer = writer
        self.shards = settings.click_shards
        self.viewers = ViewerIds(settings.secret_key, secure=settings.public_base_url.startswith("https:"))
        self._classify = (classifier or default_classifier()).classify
        self.max_per_page_view = settings.events_max_per_page_view
        self.client_rate = settings.events_client_per_s
        self.client_burst = settings.events_client_burst
        self._page_views: OrderedDict[str, _PageView] = OrderedDict()
        self._page_views_max = settings.events_page_views_tracked
        self._clients: OrderedDict[str | None, list[float]] = OrderedDict()
        self._clock = clock
        self.accepted = 0
        self.requests = 0
        self.dropped = dict.fromkeys(DROP_REASONS, 0)

    # ---- limits ----------------------------------------------------------------------------

    def _budget(self, client: str | None, wanted: int) -> int:
        """How many of `wanted` events the client may send now (token bucket per network)."""
        now = self._clock()
        bucket = self._clients.get(client)
        if bucket is None:
            bucket = self._clients[client] = [float(self.client_burst), now]
            if len(self._clients) > CLIENTS_MAX:
                self._clients.popitem(last=False)
        else:
            self._clients.move_to_end(client)
            bucket[0] = min(float(self.client_burst), bucket[0] + (now - bucket[1]) * self.client_rate)
            bucket[1] = now
        granted = min(wanted, int(bucket[0]))
        bucket[0] -= granted
        return granted

    def _page_view(self, pv: str) -> _PageView:
        state = self._page_views.get(pv)
        if state is None:
            state = self._page_views[pv] = _PageView()
            if len(self._page_views) > self._page_views_max:
                self._page_views.popitem(last=False)
        return state

    # ---- the request -----------------------------------------------------------------------

    async def accept(self, beacon: Beacon, *, user_agent: str, cookie_header: str | None,
                     remote: str | None, referer: str | None) -> int:
        """Queue the beacon's countable events; returns how many were queued."""
        self.requests += 1
        events = beacon.events
        viewers = self.viewers
        client = viewers.network_hash(remote)
        granted = self._budget(client, len(events))
        if granted < len(events):
            self.dropped["client_limit"] += len(events) - granted
            events = events[:granted]
        if not events:
            return 0
        pv = self._page_view(beacon.pv)
        room = self.max_per_page_view - pv.count
        if room < len(events):
            self.dropped["page_view_limit"] += len(events) - max(room, 0)
            events = events[:max(room, 0)]
        pv.count += len(events)
        ts_ms = int(time.time() * 1000)
        by_shard: dict[int, list[dict[str, Any]]] = {}
        seen = pv.seen
        for ev in events:
            kind = ev["type"]
            key = (kind, ev.get("code"), ev.get("video"), ev.get("live"), ev.get("q"))
            if key in seen:
                self.dropped["repeat"] += 1
                continue
            built = await self._resolve(ev, ts_ms)
            if built is None:
                self.dropped["unknown"] += 1
                continue
            seen.add(key)
            shard, item = built
            by_shard.setdefault(shard, []).append(item)
        if not by_shard:
            return 0
        cookie = viewers.from_cookie_header(cookie_header) if cookie_header else None
        viewer = viewers.viewer_hash(cookie if cookie is not None else "pv:" + beacon.pv)
        ua_class = self._classify(user_agent)[0]
        ref = referrer_host(referer)
        queued = 0
        for shard, items in by_shard.items():
            batch_id, _ = new_ulid_and_ms()
            self.writer.record(shard, orjson.dumps({
                "schema_version": STREAM_SCHEMA_VERSION, "batch_id": batch_id, "ts_ms": ts_ms,
                "viewer": viewer, "ua_class": ua_class, "page_view": beacon.pv, "referrer_host": ref,
                "events": items}))
            queued += len(items)
        self.accepted += queued
        return queued

    async def _resolve(self, ev: dict[str, Any], ts_ms: int) -> tuple[int, dict[str, Any]] | None:
        """(shard, the stream's event) for one checked event; None when its card, video or live
        session does not exist."""
        kind = ev["type"]
        t = ev.get("t")
        if kind == "impression":
            code = ev["code"]
            target = self.resolver.get(code) or await self.resolver.resolve(code)
            row = target.row
            if row is None:
                return None
            if row.live_session_id is not None:
                playback = live_playback(target.live_started_s, ts_ms / 1000)[0]
            else:
                playback = _within(t, row.video_duration_s)
            return target.shard, {
                "type": "impression", "code": row.code, "anchor_id": row.anchor_id,
                "video_id": row.video_id, "live_session_id": row.live_session_id,
                "product_id": row.product_id, "shop_id": row.shop_id, "creator_id": row.publisher_id,
                "plan_id": row.plan_id, "playback_s": playback, "quartile": None}
        surface_kind, surface_id = ("video", ev["video"]) if "video" in ev else ("live", ev["live"])
        cached, surface = self.surfaces.get(surface_kind, surface_id)
        if not cached:
            surface = await self.surfaces.load(surface_kind, surface_id)
        if surface is None:
            return None
        if surface_kind == "live":
            playback = live_playback(surface.started_s, ts_ms / 1000)[0]
        else:
            playback = _within(t, surface.duration_s)
        return surface_id % self.shards, {
            "type": kind, "code": None, "anchor_id": None,
            "video_id": surface_id if surface_kind == "video" else None,
            "live_session_id": surface_id if surface_kind == "live" else None,
            "product_id": None, "shop_id": None, "creator_id": surface.owner_id, "plan_id": None,
            "playback_s": playback, "quartile": ev.get("q")}

    # ---- metrics ---------------------------------------------------------------------------

    def register_metrics(self, registry: Registry) -> None:
        accepted = registry.counter("shoplink_player_events_total",
                                    "Player events (view, impression, progress) queued for the event streams.")
        requests = registry.counter("shoplink_player_event_requests_total", "POST /v1/events answered 204.")
        dropped = registry.counter("shoplink_player_events_dropped_total",
                                   "Player events not streamed, by reason: unknown (card, video or live "
                                   "session), repeat (same page view), page_view_limit, client_limit.")
        written = registry.counter("shoplink_player_event_batches_written_total",
                                   "Event-stream entries acknowledged by Redis (replays included).")
        spooled = registry.counter("shoplink_player_event_batches_spooled_total",
                                   "Event-stream entries written to the local spool (Redis down or slow).")
        lost = registry.counter("shoplink_player_event_batches_dropped_total",
                                "Event-stream entries lost: Redis down and the spool full or unwritable.")

        async def collect() -> None:
            accepted.set(self.accepted)
            requests.set(self.requests)
            for reason, count in self.dropped.items():
                dropped.set(count, reason=reason)
            w = self.writer
            written.set(w.written)
            spooled.set(w.spooled)
            for reason, count in w.dropped.items():
                lost.set(count, reason=reason)

        registry.register_collector(collect)


def _within(t: Any, duration_s: float | None) -> float | None:
    """The player's playback second, kept when within the video."""
    if t is None or (duration_s is not None and t > duration_s + 1):
        return None
    return round(float(t), 3)
