"""POST /v1/events: the player's events, checked, resolved, limited and queued for the streams.

Per request: the body (at most 64 KB) decoded and checked in one pass (validate.py), the
client's budget and the page view's count, then the events' JSON. An impression's JSON is its
card's prefix, built once per anchor, and its playback second. In the common case (every card
cached, new to the page view, on a video, with a playback second within it) the impressions of a
request are resolved, checked and written in a handful of C loops, whatever their number
(`_fast_impressions`); any other beacon goes event by event (`_impressions`), with the same
result (tests/api/test_player_events.py). The accepted events of a request become ONE stream
entry (schemas/events/stream_batch.schema.json) handed to the event writer (the clicks'
delivery: journal, buffer, pipelined XADD, spool on outage); nothing waits on Redis, and
PostgreSQL only on a cache miss.

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
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from itertools import compress, repeat
from operator import attrgetter, is_, is_not, le
from typing import Any

import asyncpg
import orjson
from msgspec import UNSET

from shoplink.clicks.classify import Classifier, default_classifier
from shoplink.clicks.events import live_playback
from shoplink.clicks.resolver import Resolver, Target
from shoplink.clicks.viewer import ViewerIds, referrer_host
from shoplink.config import Settings
from shoplink.delivery.writer import ClickWriter
from shoplink.funnel import repository as repo
from shoplink.funnel.models import DROP_REASONS, STREAM_SCHEMA_VERSION, Surface
from shoplink.funnel.validate import Beacon, Impression, Progress, View
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
        # target -> its card (a target's row never changes; a changed anchor gets a new target
        # from the resolver, so entries never go stale, and the dict is cleared when big)
        self._cards: dict[Target, _Card] = {}
        # (surface, type, quartile) -> its events' JSON up to the playback second (the same)
        self._surface_prefixes: dict[tuple[Surface, str, int | None], bytes] = {}
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
        """Queue the beacon's countable events; returns how many were queued.

        The accepted events of the request become ONE stream entry, on the shard of the page
        view (counting does not depend on the shard; keys.py). Each event's JSON is prebuilt per
        card (or video / live session) and completed with its playback second: no event dict is
        built or encoded per request."""
        self.requests += 1
        events = beacon.events
        viewers = self.viewers
        granted = self._budget(viewers.network_hash(remote), len(events))
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
        batch_id, ts_ms = new_ulid_and_ms()
        impressions: list[Impression]
        others: list[View | Progress]
        if set(map(type, events)) == _IMPRESSIONS_ONLY:
            impressions, others = events, []  # type: ignore[assignment]
        else:
            impressions = list(compress(events, map(is_, map(type, events), repeat(Impression))))  # type: ignore[arg-type]
            others = list(compress(events, map(is_not, map(type, events), repeat(Impression))))  # type: ignore[arg-type]
        fast = self._fast_impressions(impressions, pv.seen) if impressions else None
        items = [fast] if fast is not None else []
        if impressions and fast is None:
            items = await self._impressions(impressions, pv.seen, ts_ms)
        for ev in others:
            item = await self._surface_event(ev, pv.seen, ts_ms)
            if item is not None:
                items.append(item)
        if not items:
            return 0
        cookie = viewers.from_cookie_header(cookie_header) if cookie_header else None
        head = orjson.dumps({
            "schema_version": STREAM_SCHEMA_VERSION, "batch_id": batch_id, "ts_ms": ts_ms,
            "viewer": viewers.viewer_hash(cookie if cookie is not None else "pv:" + beacon.pv),
            "ua_class": self._classify(user_agent)[0], "page_view": beacon.pv,
            "referrer_host": referrer_host(referer)})
        self.writer.record(hash(beacon.pv) % self.shards, b"%s,\"events\":[%s]}" % (head[:-1], b",".join(items)))
        self.accepted += len(items)
        return len(items)

    def _fast_impressions(self, impressions: list[Impression], seen: set[Any]) -> bytes | None:
        """The impressions' JSON, comma-separated, in the common case, in a few C loops whatever
        their number: new distinct cards of the page view, all cached, on videos, each with a
        playback second within its video. None when any of that does not hold (then
        `_impressions` takes them one by one)."""
        codes = list(map(_CODE, impressions))
        if len(set(codes)) != len(codes) or not seen.isdisjoint(codes):
            return None
        targets = self.resolver.get_fresh(codes)
        if targets is None:
            return None
        cards = list(map(self._cards.get, targets))
        if None in cards:
            return None
        seconds = list(map(_T, impressions))
        if UNSET in seconds or not all(map(le, seconds, map(_LIMIT, cards))):  # type: ignore[arg-type]
            return None
        seen.update(codes)
        numbers = orjson.dumps(seconds)[1:-1].split(b",")  # each second's JSON, encoded at once
        return b"},".join(map(bytes.__add__, map(_PREFIX, cards), numbers)) + b"}"

    async def _impressions(self, impressions: list[Impression], seen: set[Any], ts_ms: int) -> list[bytes]:
        """The impressions' JSON, one by one: repeats and unknown cards dropped (and counted),
        live cards at the seconds since their live started, out-of-range seconds as null."""
        items: list[bytes] = []
        repeats = unknown = 0
        get, resolve, cards = self.resolver.get, self.resolver.resolve, self._cards
        for ev in impressions:
            code = ev.code
            if code in seen:
                repeats += 1
                continue
            target = get(code) or await resolve(code)
            card = cards.get(target)
            if card is None:
                card = cards[target] = _card(target)
                if len(cards) > CARDS_MAX:
                    cards.clear()
            if card.prefix is None:
                unknown += 1
                continue
            seen.add(code)
            if card.live:
                playback = live_playback(target.live_started_s, ts_ms / 1000)[0]
            else:
                t = ev.t
                playback = None if t is UNSET or t > card.limit else t  # type: ignore[operator]
            items.append(card.prefix + orjson.dumps(playback) + b"}")
        self.dropped["repeat"] += repeats
        self.dropped["unknown"] += unknown
        return items

    async def _surface_event(self, ev: View | Progress, seen: set[Any], ts_ms: int) -> bytes | None:
        """The stream's JSON of a view or progress event; None (counted) when the page view sent
        it already or its video or live session does not exist."""
        kind = "view" if type(ev) is View else "progress"
        q = ev.q if type(ev) is Progress else None
        surface_kind, surface_id = ("video", ev.video) if ev.video is not UNSET else ("live", ev.live)
        key = (kind, surface_kind, surface_id, q)
        if key in seen:
            self.dropped["repeat"] += 1
            return None
        cached, surface = self.surfaces.get(surface_kind, surface_id)  # type: ignore[arg-type]
        if not cached:
            surface = await self.surfaces.load(surface_kind, surface_id)  # type: ignore[arg-type]
        if surface is None:
            self.dropped["unknown"] += 1
            return None
        seen.add(key)
        if surface_kind == "live":
            playback = live_playback(surface.started_s, ts_ms / 1000)[0]
        else:
            t = None if ev.t is UNSET else ev.t
            playback = t if t is None or surface.duration_s is None or t <= surface.duration_s + 1 else None
        prefixes = self._surface_prefixes
        prefix = prefixes.get((surface, kind, q))
        if prefix is None:
            if len(prefixes) >= CARDS_MAX:
                prefixes.clear()
            prefix = prefixes[(surface, kind, q)] = orjson.dumps({
                "type": kind, "code": None, "anchor_id": None,
                "video_id": surface_id if surface_kind == "video" else None,
                "live_session_id": surface_id if surface_kind == "live" else None,
                "product_id": None, "shop_id": None, "creator_id": surface.owner_id, "plan_id": None,
                "quartile": q})[:-1] + b',"playback_s":'
        return prefix + orjson.dumps(playback) + b"}"

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


CARDS_MAX = 100_000
_IMPRESSIONS_ONLY = {Impression}
_CODE = attrgetter("code")
_T = attrgetter("t")
_LIMIT = attrgetter("limit")
_PREFIX = attrgetter("prefix")


class _Card:
    """An anchor's impressions as stream JSON: `prefix`, the playback second's JSON and "}" is
    one event (prefix None: an unknown card). `limit`: the largest playback second taken as is
    (the video's duration and a second of slack; -1 on a live or an unknown card, which the fast
    path leaves to the slow one)."""

    __slots__ = ("limit", "live", "prefix")

    def __init__(self, prefix: bytes | None, limit: float, live: bool) -> None:
        self.prefix = prefix
        self.limit = limit
        self.live = live


def _card(target: Target) -> _Card:
    """The card of `target` (the resolver's answer for its code)."""
    row = target.row
    if row is None:
        return _Card(None, -1.0, False)
    fields = orjson.dumps({
        "type": "impression", "code": row.code, "anchor_id": row.anchor_id, "video_id": row.video_id,
        "live_session_id": row.live_session_id, "product_id": row.product_id, "shop_id": row.shop_id,
        "creator_id": row.publisher_id, "plan_id": row.plan_id, "quartile": None})
    prefix = fields[:-1] + b',"playback_s":'
    live = row.live_session_id is not None
    duration = row.video_duration_s
    limit = -1.0 if live else (math.inf if duration is None else duration + 1)
    return _Card(prefix, limit, live)
