"""Anchor code -> what a click does, from a bounded in-process cache.

In steady state a click is a dictionary lookup: each cached `Target` carries the redirect's
Location already built up to `sl_click=` and the event's anchor-dependent fields. Misses are
coalesced (one lookup per code however many clicks wait for it) and batched (one query for
all codes missed meanwhile), and unknown codes are remembered for a while (negative entries),
so a flood of clicks on a new or a bogus code reaches PostgreSQL once, not once per click. A
flood of *distinct* bogus codes (each one new) is paced: while the last batch read found fewer
than half of its codes, the next one starts at least MISS_LOAD_GAP_S after it unless LOAD_BATCH
codes wait already, so PostgreSQL sees at most 1 + T / MISS_LOAD_GAP_S + N / LOAD_BATCH queries
for N unknown codes over T seconds (20 per second under any junk flood, against one per handful
of requests before). Misses of real codes (a cold start) are not paced; during a junk flood a
real code's first click waits at most MISS_LOAD_GAP_S more.

Correctness across instances comes from the change bus: `on_change` drops every cached code a
change touches, through reverse indexes (product -> codes, shop -> codes, ...). A change that
arrives while a lookup is in flight keeps that lookup's answer out of the cache (both are
`shoplink.cache.InvalidatingCache`'s). A TTL bounds the damage of a lost invalidation message.

Entries are re-read ahead of their expiry (`refresh_at`, at REFRESH_AT of the TTL) by the first
click that sees them due, in the background and batched like misses, while clicks keep using the
cached answer: a click does not wait on PostgreSQL because its anchor's TTL ran out. A re-read
that finds the same row and commission only extends the entry's life.

PostgreSQL down: a load that fails marks the resolver degraded. While degraded, a code whose
entry expired (TTL) is answered at once from that stale entry, for at most
SHOPLINK_CLICK_CACHE_MAX_STALE_S past its TTL, while a background load retries; a code with no
usable entry fails fast (503, no query) for RETRY_S after the last failure, then one load tries
PostgreSQL again. The first load that succeeds ends the degraded state. Entries dropped by an
invalidation are never served stale.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import re
import time
from operator import attrgetter
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from shoplink.cache import InvalidatingCache
from shoplink.catalog.urls import UrlRejected, normalize_url
from shoplink.changes import Change
from shoplink.clicks import events
from shoplink.clicks import repository as repo
from shoplink.clicks.models import AnchorTarget, CommissionTermsSource
from shoplink.domains.names import claimable
from shoplink.errors import ServiceUnavailable

log = logging.getLogger(__name__)

CODE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{6,32}$")  # the anchors.code CHECK constraint
# Never in a Location: the redirect is written as a preformatted message (redirect.py), so a
# CR or LF here would split the response. The catalog's URL check rejects these already.
_UNSAFE_IN_HEADER = re.compile(r"[\x00-\x20\x7f]")
ATTRIBUTION_PARAMS = frozenset({"utm_source", "utm_medium", "utm_campaign", "utm_content", "sl_click"})
LOAD_BATCH = 500
MISS_LOAD_GAP_S = 0.05  # back-to-back loads start at least this far apart (unless a batch is full)
TERMS_ERROR_TTL_S = 1.0
# An entry lives this fraction of SHOPLINK_CLICK_CACHE_TTL_S, drawn at random: entries cached
# together (a start-up, a bulk fill) are re-read spread over time, not in one burst.
TTL_JITTER = (0.5, 1.0)
REFRESH_AT = 0.8  # of an entry's time to live: when a click starts re-reading it
REFRESH_RETRY_S = 1.0  # a failed re-read is retried at most this often per code
REFRESH_DELAY_S, REFRESH_DELAY = 1.0, 0.05  # a re-read waits min(1 s, 5 % of the TTL) for others
RETRY_S = 1.0  # while PostgreSQL fails, codes with nothing to serve fail fast this long

Key = tuple[str, int]


class Target:
    """What one code resolves to. Immutable once built; shared by every click on the code."""

    __slots__ = ("code", "commission", "expires", "head", "keys", "live_started_s", "outcome", "page",
                 "prefix", "refresh_at", "row", "shard", "status", "tail", "unknown", "video_duration_s")

    def __init__(self, *, code: str, outcome: str, status: int, shard: int, base: dict[str, Any],
                 head: str | None = None, tail: str = "", keys: tuple[Key, ...] = (),
                 expires: float = 0.0, refresh_at: float | None = None,
                 video_duration_s: float | None = None, live_started_s: float | None = None,
                 row: AnchorTarget | None = None, page: str | None = None) -> None:
        self.code = code
        self.outcome = outcome  # redirected | fallback | gone | not_found
        self.unknown = outcome == "not_found"  # no such anchor: no event is recorded
        self.status = status  # 302 | 410 | 404
        # The page a non-redirect shows: not_found (unknown code), gone (410: archived, delisted,
        # its domain lapsed or revoked), not_active (404: its domain is not verified yet).
        self.page = page or {404: "not_found", 410: "gone"}.get(status)
        self.shard = shard
        self.prefix = events.static_prefix(base)  # the event's anchor-dependent fields, as JSON
        self.head = head  # Location up to and including "sl_click=", or None (no redirect)
        self.tail = tail  # "#fragment" or ""
        self.keys = keys  # (kind, id) pairs whose changes drop this entry
        self.expires = expires  # time.monotonic() deadline
        # When a click starts re-reading the entry in the background (time.monotonic()).
        self.refresh_at = expires if refresh_at is None else refresh_at
        self.video_duration_s = video_duration_s
        self.live_started_s = live_started_s
        self.row = row  # what it was built from (a re-read finding the same row reuses it)
        self.commission = base["commission"]


_REFRESH_AT = attrgetter("refresh_at")


def _retrieve(future: asyncio.Future[Target]) -> None:
    """Done callback of a background refresh: its failure was handled (the entry stays stale)."""
    if not future.cancelled():
        future.exception()


def location_parts(url: str, *, medium: str, campaign: str, code: str) -> tuple[str, str]:
    """(head, tail) of the redirect: the stored URL's own query and fragment kept, our attribution
    parameters replacing any of the same name, `sl_click=` last so a click appends its id."""
    parts = urlsplit(url)
    kept = [p for p in parts.query.split("&") if p and p.partition("=")[0] not in ATTRIBUTION_PARAMS]
    kept += ["utm_source=shoplink", f"utm_medium={medium}", f"utm_campaign={campaign}",
             f"utm_content={code}", "sl_click="]
    head = urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(kept), ""))
    return head, ("#" + parts.fragment if parts.fragment else "")


class Resolver:
    def __init__(self, pool: asyncpg.Pool, *, shards: int, max_size: int, ttl_s: float,
                 negative_ttl_s: float, allow_http: bool, max_stale_s: float = 3600.0,
                 terms: CommissionTermsSource | None = None) -> None:
        """`terms`: the affiliate program's commission terms (None: clicks carry no commission)."""
        self._pool = pool
        self._shards = shards
        self._ttl_s = ttl_s
        self._negative_ttl_s = negative_ttl_s
        self._allow_http = allow_http
        self._max_stale_s = max_stale_s
        self.degraded = False  # the last load failed: PostgreSQL is not answering
        self._retry_at = 0.0  # time.monotonic() before which a code with nothing to serve fails fast
        self.terms = terms
        # Insertion order evicts the oldest-loaded first; entries are reloaded at least every TTL,
        # so hot codes stay young without an LRU update on every click. A change drops the codes
        # whose keys it names (`Target.keys`); unknown codes (negative entries) have their own,
        # smaller cache, which any anchor change empties (a new anchor may carry such a code).
        self._cache: InvalidatingCache[str, Target] = InvalidatingCache(max_size, lambda _, t: t.keys)
        self._unknown: InvalidatingCache[str, Target] = InvalidatingCache(max(16, max_size // 4),
                                                                          lambda _, t: ())
        self._entries = self._cache.entries  # read directly by `get` (the hot path)
        self._negative = self._unknown.entries
        self._inflight: dict[str, asyncio.Future[Target]] = {}
        self._queue: list[str] = []
        self._refresh_queue: dict[str, None] = {}  # due entries, moved to _queue by _refresh_timer
        self._refresh_timer: asyncio.TimerHandle | None = None
        self._loader: asyncio.Task[None] | None = None
        self._last_load = 0.0  # time.monotonic() when the last batch was read
        self._junk = False  # the last batch found less than half its codes: loads are paced
        self.hits = 0
        self.negative_hits = 0
        self.misses = 0
        self.refreshes = 0
        self.loads = 0
        self.load_errors = 0
        self.stale_hits = 0

    # ---- the hot path ----------------------------------------------------------------------

    def get(self, code: str) -> Target | None:
        """The cached, unexpired target of `code`, or None (then call `resolve`)."""
        entry = self._entries.get(code)
        if entry is not None:
            now = time.monotonic()
            if entry.expires > now:
                self.hits += 1
                if entry.refresh_at <= now:
                    self._refresh(entry, now)
                return entry
            return None
        entry = self._negative.get(code)
        if entry is not None and entry.expires > time.monotonic():
            self.negative_hits += 1
            return entry
        return None

    def get_fresh(self, codes: list[str]) -> list[Target] | None:
        """The cached targets of all `codes` when every one is cached and none is due for a
        re-read; None otherwise (then `get` and `resolve` them one by one). A few C loops
        whatever the number of codes: a player's beacon looks up twenty at a time."""
        if not codes:
            return []
        found = list(map(self._entries.get, codes))
        if None in found or min(map(_REFRESH_AT, found)) <= time.monotonic():  # type: ignore[type-var]
            return None
        self.hits += len(found)
        return found  # type: ignore[return-value]

    async def resolve(self, code: str) -> Target:
        """Load `code` (coalesced and batched with other misses); raises ServiceUnavailable when
        PostgreSQL cannot answer and no stale entry is left to serve."""
        if not CODE_PATTERN.match(code):
            return self._not_found(code, expires=0.0)  # cannot exist: no query, nothing cached
        self.misses += 1
        if self.degraded:
            now = time.monotonic()
            stale = self._stale(code, now)
            if stale is not None:  # answer now; a background load refreshes it if it can
                if now >= self._retry_at:
                    self._submit(code).add_done_callback(_retrieve)
                self.stale_hits += 1
                return stale
            if now < self._retry_at:
                raise ServiceUnavailable("the link cannot be resolved right now, try again",
                                         code="resolver_unavailable")
        try:
            return await asyncio.shield(self._submit(code))
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            stale = self._stale(code, time.monotonic())
            if stale is not None:  # serving a slightly old answer beats failing the viewer
                self.stale_hits += 1
                return stale
            raise ServiceUnavailable("the link cannot be resolved right now, try again",
                                     code="resolver_unavailable") from exc

    def _submit(self, code: str) -> asyncio.Future[Target]:
        """The pending load of `code` (joined if one is in flight, queued otherwise)."""
        future = self._inflight.get(code)
        if future is None:
            return self._enqueue(code)
        if code in self._refresh_queue:  # a click waits for it now: no more delay for re-reads
            self._start_refreshes()
        return future

    def _stale(self, code: str, now: float) -> Target | None:
        """The expired entry of `code` if it is at most max-stale past its TTL (None otherwise)."""
        entry = self._entries.get(code) or self._negative.get(code)
        if entry is not None and now - entry.expires <= self._max_stale_s:
            return entry
        return None

    def _refresh(self, entry: Target, now: float) -> None:
        """Re-read `entry` in the background; clicks keep getting it until the answer is in.
        Re-reads wait a little (REFRESH_DELAY) to share queries: due entries come one by one."""
        entry.refresh_at = now + REFRESH_RETRY_S
        if entry.code in self._inflight:
            return
        self._enqueue(entry.code, now=False).add_done_callback(_retrieve)  # nobody awaits it
        self.refreshes += 1
        if self._refresh_timer is None:
            self._refresh_timer = asyncio.get_running_loop().call_later(
                min(REFRESH_DELAY_S, REFRESH_DELAY * self._ttl_s), self._start_refreshes)

    def _start_refreshes(self) -> None:
        if self._refresh_timer is not None:
            self._refresh_timer.cancel()
            self._refresh_timer = None
        self._queue.extend(self._refresh_queue)
        self._refresh_queue = {}
        self._start_loader()

    # ---- loading -----------------------------------------------------------------------------

    def _enqueue(self, code: str, *, now: bool = True) -> asyncio.Future[Target]:
        """A future for `code`'s answer, loaded with the next batch (`now`) or with the next
        batch of re-reads."""
        future: asyncio.Future[Target] = asyncio.get_running_loop().create_future()
        self._inflight[code] = future
        if not now:
            self._refresh_queue[code] = None
            return future
        self._queue.append(code)
        self._start_loader()
        return future

    def _start_loader(self) -> None:
        if self._queue and (self._loader is None or self._loader.done()):
            self._loader = asyncio.create_task(self._load_loop(), name="click-resolver-load")

    async def _load_loop(self) -> None:
        while self._queue:
            wait = self._last_load + MISS_LOAD_GAP_S - time.monotonic()
            if self._junk and wait > 0 and len(self._queue) < LOAD_BATCH:  # fewer, fuller batches
                await asyncio.sleep(wait)
            self._last_load = time.monotonic()
            codes, self._queue = self._queue[:LOAD_BATCH], self._queue[LOAD_BATCH:]
            # A change that arrives while the batch is read keeps the answers it touches out.
            with self._cache.loading() as load, self._unknown.loading() as load_unknown:
                try:
                    targets = await self._load(codes)
                except Exception as exc:
                    self.load_errors += 1
                    if not self.degraded:
                        log.error("click resolver cannot read PostgreSQL: serving cached anchors, "
                                  "stale ones included", extra={"error": repr(exc)})
                    self.degraded = True
                    self._retry_at = time.monotonic() + RETRY_S
                    for code in codes:
                        future = self._inflight.pop(code)
                        if not future.done():
                            future.set_exception(exc)
                    continue
                if self.degraded:
                    self.degraded = False
                    log.warning("click resolver reads PostgreSQL again")
                # Mostly unknown codes: a junk flood (or a broken link going round): pace the next.
                self._junk = len(targets) * 2 < len(codes)
                for code in codes:
                    entry = targets.get(code) or self._not_found(
                        code, expires=time.monotonic() + self._negative_ttl_s)
                    if entry.outcome == "not_found":
                        load_unknown.store(code, entry)
                    elif self._entries.get(code) is entry:  # renewed in place: now the youngest
                        load.store(code, entry)
                    elif load.store(code, entry):
                        self._unknown.discard(code)
                    future = self._inflight.pop(code)
                    if not future.done():
                        future.set_result(entry)

    async def _load(self, codes: list[str]) -> dict[str, Target]:
        self.loads += 1
        async with self._pool.acquire() as con:
            rows = await repo.targets_by_codes(con, codes)
        now_ms = int(time.time() * 1000)
        return {row.code: await self._build(row, now_ms) for row in rows}

    async def _commission(self, row: AnchorTarget, now_ms: int) -> tuple[dict[str, Any] | None, float]:
        """(commission field, seconds it may be cached)."""
        if row.plan_id is None or self.terms is None:
            return None, self._ttl_s * random.uniform(*TTL_JITTER)
        try:
            result = self.terms.terms_lookup(row.plan_id, row.product_id, now_ms, row.publisher_id)
            terms = await result if inspect.isawaitable(result) else result
        except Exception:
            log.exception("commission terms lookup failed", extra={"plan_id": row.plan_id})
            return events.commission_json(None, "lookup_failed"), TERMS_ERROR_TTL_S
        ttl = self._ttl_s * random.uniform(*TTL_JITTER)
        if terms.valid_until_ms is not None:
            ttl = min(ttl, max(0.0, (terms.valid_until_ms - now_ms) / 1000))
        return events.commission_json(terms.rate_bp, terms.source), ttl

    async def _build(self, row: AnchorTarget, now_ms: int) -> Target:
        commission, ttl = await self._commission(row, now_ms)
        now = time.monotonic()
        expires, refresh_at = now + ttl, now + ttl * REFRESH_AT
        cached = self._entries.get(row.code)
        if cached is not None and cached.row == row and cached.commission == commission:
            # A re-read that found nothing changed: the same entry lives on (no rebuild, no
            # re-indexing). If a change touches it meanwhile, on_change drops it as usual.
            cached.expires, cached.refresh_at = expires, refresh_at
            return cached
        keys: list[Key] = [("anchor", row.anchor_id), ("product", row.product_id), ("shop", row.shop_id)]
        if row.video_id is not None:
            keys.append(("video", row.video_id))
        if row.live_session_id is not None:
            keys.append(("live", row.live_session_id))
        if row.plan_id is not None:
            keys.append(("plan", row.plan_id))
        campaign = f"plan-{row.plan_id}" if row.plan_id is not None else f"publisher-{row.publisher_id}"
        live = row.surface == "live"
        url: str | None = None
        outcome = "redirected"
        blocked: str | None = None  # the state of the unverified domain that stopped the redirect
        if (row.anchor_status == "active" and row.product_status == "active"
                and row.video_status != "deleted"):
            url, blocked = self._target_url(row.product_url, row)
        if url is None:
            outcome = "fallback"
            url = self._target_url(row.fallback_url, row)[0] if row.fallback_url else None
            if url is None:
                outcome = "gone"
        status, page = 302, None
        if outcome == "gone":  # a domain not verified yet: "not active yet"; anything else: gone
            status, page = (404, "not_active") if blocked in ("pending", "failed") else (410, "gone")
        head, tail = (None, "")
        if url is not None:
            head, tail = location_parts(url, medium="live" if live else "video", campaign=campaign,
                                        code=row.code)
        base = events.static_fields(
            code=row.code, outcome=outcome, surface=row.surface, anchor_id=row.anchor_id,
            video_id=row.video_id, live_session_id=row.live_session_id, product_id=row.product_id,
            shop_id=row.shop_id, creator_id=row.publisher_id, plan_id=row.plan_id,
            commission=commission)
        started = (row.live_started_at.timestamp()
                   if live and row.live_status == "live" and row.live_started_at is not None else None)
        return Target(code=row.code, outcome=outcome, status=status,
                      shard=events.shard_for(row.anchor_id, row.code, self._shards), base=base,
                      head=head, tail=tail, keys=tuple(keys), expires=expires, refresh_at=refresh_at,
                      video_duration_s=None if live else row.video_duration_s,
                      live_started_s=started, row=row, page=page)

    def _target_url(self, url: str | None, row: AnchorTarget) -> tuple[str | None, str | None]:
        """(the URL re-checked now against the shop's *verified* domains, None) when it may be a
        redirect target; else (None, the state of the shop's unverified domain it is on, if any).
        Runs when an anchor is loaded into the cache, never per click."""
        if url is None:
            return None, None
        try:
            checked, host = normalize_url(url, allow_http=self._allow_http)
            if _UNSAFE_IN_HEADER.search(checked):
                raise UrlRejected("control character or space in the URL")
        except UrlRejected as exc:
            log.warning("stored URL refused for a redirect", extra={
                "anchor_id": row.anchor_id, "shop_id": row.shop_id, "reason": str(exc)})
            return None, None
        if any(rule.matches(host) and claimable(rule.domain, dev=self._allow_http) for rule in row.domains):
            return checked, None
        state = next((state for rule, state in row.unverified if rule.matches(host)), None)
        if state is None:  # on none of the shop's domains: the data is wrong somewhere
            log.warning("stored URL refused for a redirect", extra={
                "anchor_id": row.anchor_id, "shop_id": row.shop_id,
                "reason": f"host {host!r} is not one of the shop's domains"})
        return None, state

    def _not_found(self, code: str, *, expires: float) -> Target:
        recorded = code[:events.MAX_CODE_LENGTH]  # the shard follows the code the event carries
        return Target(code=code, outcome="not_found", status=404,
                      shard=events.shard_for(None, recorded, self._shards),
                      base=events.static_fields(code=code, outcome="not_found"), expires=expires)

    # ---- the cache ---------------------------------------------------------------------------

    def on_change(self, change: Change) -> None:
        """Change-bus listener: forget what `change` may have made wrong (cheap, never raises)."""
        self._cache.on_change(change)
        if change.is_everything or change.kind == "anchor":  # a new anchor may carry an unknown code
            self._unknown.invalidate_all()

    @property
    def size(self) -> int:
        return len(self._cache)
