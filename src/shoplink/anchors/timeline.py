"""The viewer timeline of a video, cached in-process and pre-serialized.

A player asks either for the whole timeline (`?at` absent) or for what is on screen at one
second. Both answers come from one `Timeline` per video, built from PostgreSQL on a miss:

* the anchor boundaries (every start and end) split the video into segments inside which the
  set of active anchors does not change; `at` is mapped to its segment with one bisect;
* each segment's JSON body and ETag are serialized once, on first use, and then served as bytes.

Anchors are active on the half-open range [start_s, end_s): at exactly start_s an anchor is
shown, at exactly end_s it is not.

Entries are dropped by the change bus ("video" <id>, "anchor" <id>, "product" <id>, "*") on
every instance (a `shoplink.cache.InvalidatingCache`, whose guard keeps a load that a change
overtook out of the cache), and expire after `ttl_s` in case a message was lost.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import time
from bisect import bisect_right
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from shoplink.cache import InvalidatingCache
from shoplink.changes import Change


@dataclass(frozen=True)
class TimelineItem:
    anchor_id: int
    product_id: int
    start_s: float
    end_s: float
    data: dict[str, Any]  # the viewer JSON of the anchor


@dataclass(frozen=True)
class TimelineSource:
    """What a loader returns for an active video; items may hold delisted products' ids too."""

    video_id: int
    duration_s: float
    items: list[TimelineItem]  # only the anchors viewers see
    product_ids: frozenset[int]  # every product the video's active anchors point to
    anchor_ids: frozenset[int]


Loader = Callable[[int], Awaitable[TimelineSource | None]]


def _etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=10).hexdigest() + '"'


@dataclass(frozen=True)
class Answer:
    """A ready-to-send answer: the JSON body, its ETag and its response headers."""

    body: bytes
    etag: str
    cache_control: str = "no-cache"

    @functools.cached_property
    def headers(self) -> dict[str, str]:
        return {"ETag": self.etag, "Cache-Control": self.cache_control,
                "Content-Type": "application/json"}

    @functools.cached_property
    def not_modified_headers(self) -> dict[str, str]:
        return {"ETag": self.etag, "Cache-Control": self.cache_control}


@dataclass
class Timeline:
    video_id: int
    found: bool
    loaded_at: float
    items: list[TimelineItem] = field(default_factory=list)
    product_ids: frozenset[int] = frozenset()
    anchor_ids: frozenset[int] = frozenset()
    cache_control: str = "no-cache"
    full: Answer = Answer(b"", "")
    boundaries: list[float] = field(default_factory=list)
    _segments: list[Answer | None] = field(default_factory=list)

    @classmethod
    def build(cls, source: TimelineSource, now: float, cache_control: str = "no-cache") -> Timeline:
        items = sorted(source.items, key=lambda i: (i.start_s, i.anchor_id))
        full = orjson.dumps({"video_id": source.video_id, "duration_s": source.duration_s,
                             "anchors": [i.data for i in items]})
        boundaries = sorted({i.start_s for i in items} | {i.end_s for i in items})
        return cls(video_id=source.video_id, found=True, loaded_at=now, items=items,
                   product_ids=source.product_ids, anchor_ids=source.anchor_ids,
                   cache_control=cache_control, full=Answer(full, _etag(full), cache_control),
                   boundaries=boundaries,
                   _segments=[None] * (len(boundaries) + 1))

    @classmethod
    def missing(cls, video_id: int, now: float) -> Timeline:
        return cls(video_id=video_id, found=False, loaded_at=now)

    def active_at(self, at: float) -> Answer:
        """The anchors active at `at` (start_s <= at < end_s)."""
        segment = bisect_right(self.boundaries, at)
        cached = self._segments[segment]
        if cached is None:
            cached = self._segments[segment] = self._render(segment)
        return cached

    def active_items(self, at: float) -> list[TimelineItem]:
        segment = bisect_right(self.boundaries, at)
        if segment == 0:
            return []
        point = self.boundaries[segment - 1]  # every anchor covers whole segments
        return [i for i in self.items if i.start_s <= point < i.end_s]

    def _render(self, segment: int) -> Answer:
        point = self.boundaries[segment - 1] if segment else -1.0
        active = [i.data for i in self.items if i.start_s <= point < i.end_s]
        body = orjson.dumps({"video_id": self.video_id, "anchors": active})
        return Answer(body, _etag(body), self.cache_control)


class TimelineCache:
    def __init__(self, loader: Loader, *, ttl_s: float = 60.0, max_entries: int = 10_000,
                 max_age_s: int = 5) -> None:
        self._loader = loader
        # Players and CDNs may reuse an answer for max_age_s, then revalidate with If-None-Match.
        self.cache_control = f"public, max-age={max_age_s}"
        self._ttl = ttl_s
        self._cache: InvalidatingCache[int, Timeline] = InvalidatingCache(max_entries, _tags)
        self._entries = self._cache.entries  # read by `peek` (the hot path)
        self._loading: dict[int, asyncio.Future[Timeline]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, video_id: int) -> Timeline | None:
        """The cached, fresh timeline without awaiting (the hot path), or None."""
        entry = self._entries.get(video_id)
        if entry is not None and time.monotonic() - entry.loaded_at < self._ttl:
            self.hits += 1
            return entry
        return None

    async def get(self, video_id: int) -> Timeline:
        entry = self.peek(video_id)
        if entry is not None:
            return entry
        self.misses += 1
        job = self._loading.get(video_id)
        if job is None:
            job = asyncio.ensure_future(self._load(video_id))
            self._loading[video_id] = job
            job.add_done_callback(lambda done: self._forget_job(video_id, done))
        return await asyncio.shield(job)

    def _forget_job(self, video_id: int, job: asyncio.Future[Timeline]) -> None:
        if self._loading.get(video_id) is job:
            del self._loading[video_id]
        if not job.cancelled():
            job.exception()  # retrieved: a failed load is reported to its awaiters only

    async def _load(self, video_id: int) -> Timeline:
        with self._cache.loading() as load:  # a change that arrives meanwhile keeps it out
            source = await self._loader(video_id)
            now = time.monotonic()
            entry = Timeline.build(source, now, self.cache_control) if source else Timeline.missing(video_id, now)
            load.store(video_id, entry)
        return entry

    def invalidate(self, change: Change) -> None:
        """A change-bus listener: drop what `change` may have made stale ("video" <id>, "anchor"
        <id>, "product" <id>: the timelines that show them; "*": all)."""
        self._loading.clear()  # loads already running may have read the old state: start afresh
        self._cache.on_change(change)


def _tags(video_id: int, timeline: Timeline) -> list[tuple[str, int]]:
    """The changes that drop a cached timeline: its video's, and its anchors' and products'."""
    return [("video", video_id), *(("anchor", a) for a in timeline.anchor_ids),
            *(("product", p) for p in timeline.product_ids)]
