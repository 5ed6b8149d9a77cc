"""`shoplink count`: the worker that reads every click shard, and every shard of the player's
event streams (`shoplink:events:{n}`, batches of views, impressions and progress), through the
consumer group `counters`, applies each read atomically and idempotently (apply.py), then
acknowledges it. Each stream family is read by its own loop per shard, with its own parser.

Delivery is at-least-once: a worker that dies leaves its entries pending, and any worker of the
group reclaims them with XAUTOCLAIM once they have been idle for SHOPLINK_COUNT_CLAIM_IDLE_MS;
the apply step recognises event ids it has already applied, so counts stay exact. Each shard is
read with its own XREADGROUP (one stream per command: Redis Cluster safe); the commands of a shard
that are sent as packed RESP (XREADGROUP, the apply EVALSHA, XACK) go to the client of the node
that owns the shard's slot (`RedisTopology.for_shard`), the others through the key-routed
client. Malformed entries go to `shoplink:clicks:dead:{n}` with the reason and are acknowledged;
they never stop the worker.

The same process moves counters into PostgreSQL (rollup.py) and trims the streams (streams.py)
on their own intervals; several worker processes may run all of this concurrently.

A `checkpoint` (rollup.Checkpoint; none in production) is called at each point of a batch where
a crash must leave the counts exact: "after_read" (read and parsed, nothing applied), "mid_batch"
(the first of several apply chunks applied), "after_apply" (all applied, nothing acknowledged),
with the batch's stream ids, and at the roll-up's points. The crash tests kill the process there
(tests/support/count_launcher.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import asyncpg
from redis.asyncio import Redis
from redis.exceptions import RedisError

from shoplink.analytics import keys as k
from shoplink.analytics.apply import Applier
from shoplink.analytics.events import Malformed, parse, parse_batch
from shoplink.analytics.funnel_events import parse_batches, parse_one
from shoplink.analytics.rollup import Checkpoint, Rollup
from shoplink.analytics.streams import ensure_group, trim_shard
from shoplink.config import Settings
from shoplink.metrics import Registry
from shoplink.redis import RedisTopology, topology_of
from shoplink.resp import call, pack_ids

log = logging.getLogger(__name__)

Entry = tuple[bytes, bytes | None, bool]  # (stream id, payload 'e', entry still exists)


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def _payload(fields: Any) -> bytes | None:
    if fields is None:
        return None
    if isinstance(fields, dict):
        value = fields.get(b"e")
        return value if isinstance(value, bytes) else None
    for i in range(0, len(fields) - 1, 2):
        if fields[i] == b"e":
            value = fields[i + 1]
            return value if isinstance(value, bytes) else None
    return None


def _entries(raw: Any) -> list[Entry]:
    """Normalise an XREADGROUP / XAUTOCLAIM entry list (RESP2 or RESP3, raw or parsed)."""
    if not raw:
        return []
    try:  # the producer's shape: [id, [b"e", payload]], in one C-level pass
        shapes = {(type(f), len(f), f[0]) for _, f in raw}
        if shapes == {(list, 2, b"e")}:
            return [(sid, f[1], True) for sid, f in raw]
    except (TypeError, KeyError, IndexError):  # parsed replies (dicts), deleted entries (None)
        pass
    return [(sid, _payload(fields), fields is not None) for sid, fields in raw]


@dataclass(frozen=True)
class Family:
    """A stream family the worker counts: its keys, and how its entries are parsed and applied."""

    name: str
    stream: Callable[[int], str]
    dead: Callable[[int], str]
    parse_all: Callable[[Sequence[bytes]], list[Any] | None]
    parse_one: Callable[[bytes | None], Any]
    funnel: bool  # entries are batches of player events


CLICKS = Family("clicks", k.stream, k.dead_stream, parse_batch, parse, False)
EVENTS = Family("events", k.event_stream, k.event_dead_stream, parse_batches, parse_one, True)
FAMILIES = (CLICKS, EVENTS)


@dataclass
class WorkerStats:
    read: int = 0
    applied: int = 0
    duplicates: int = 0
    dead: int = 0
    batches: int = 0
    claimed: int = 0


class CountWorker:
    def __init__(self, settings: Settings, redis: Redis | RedisTopology, pool: asyncpg.Pool, *,
                 consumer: str | None = None, exit_when_idle: bool = False,
                 rollups: bool = True, trims: bool = True, checkpoint: Checkpoint | None = None) -> None:
        self.settings = settings
        self.topology = topology_of(redis)
        self.redis = self.topology.client
        self.pool = pool
        self.consumer = consumer or consumer_name()
        self.exit_when_idle = exit_when_idle
        self.rollups = rollups
        self.trims = trims
        self.checkpoint = checkpoint
        self.applier = Applier(self.topology, buckets=settings.stats_buckets,
                               dedup_ttl_s=settings.count_dedup_retention_s,
                               uniques_ttl_s=settings.stats_uniques_ttl_s,
                               heatmap_bucket_s=settings.stats_heatmap_bucket_s)
        self.rollup = Rollup(self.redis, pool, settings.click_shards, node=self.topology.for_shard,
                             buckets=settings.stats_buckets, checkpoint=checkpoint)
        self.stats = WorkerStats()
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> WorkerStats:
        shards = range(self.settings.click_shards)
        for family in FAMILIES:
            for shard in shards:
                await ensure_group(self.redis, family.stream(shard))
        log.info("count worker started", extra={"consumer": self.consumer,
                                                "shards": self.settings.click_shards})
        readers = [asyncio.create_task(self._shard_loop(s, f), name=f"count-{f.name}-{s}")
                   for f in FAMILIES for s in shards]
        background = []
        if self.rollups:
            background.append(asyncio.create_task(self._every(self.settings.count_rollup_interval_s,
                                                              self._rollup_once), name="rollup"))
            background.append(asyncio.create_task(self._every(self.settings.count_uniques_interval_s,
                                                              self._uniques_once), name="uniques"))
        if self.trims:
            background.append(asyncio.create_task(self._every(self.settings.count_trim_interval_s,
                                                              self._trim_once), name="trim"))
        background.append(asyncio.create_task(self._every(10.0, self._log_stats), name="count-log"))
        try:
            await asyncio.gather(*readers)
        finally:
            self._stop.set()
            for task in [*readers, *background]:
                task.cancel()
            for task in [*readers, *background]:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            with contextlib.suppress(RedisError, OSError):
                await self._forget_self()
        return self.stats

    async def _every(self, interval: float, job: Any) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=interval)
            if self._stop.is_set():
                return
            try:
                await job()
            except (RedisError, OSError, asyncpg.PostgresError) as exc:
                log.warning("background job failed", extra={"job": getattr(job, "__name__", "?"),
                                                            "error": repr(exc)})

    async def _rollup_once(self) -> None:
        report = await self.rollup.run_once(uniques=False)
        s = self.settings
        report.pruned = await self.rollup.prune({"minute": s.stats_minute_retention_s,
                                                 "hour": s.stats_hour_retention_s,
                                                 "day": s.stats_day_retention_s})
        if report.moves or report.uniques:
            log.debug("rollup", extra=asdict(report))

    async def _uniques_once(self) -> None:
        """HyperLogLog unions are the costly part of a roll-up (12 KB sketches read from and
        written to PostgreSQL per entity and day), and reads add what is still in Redis, so they
        run on their own, longer interval."""
        report = await self.rollup.run_once(moves=False)
        if report.uniques:
            log.debug("uniques rollup", extra=asdict(report))

    async def _trim_once(self) -> None:
        s = self.settings
        for family in FAMILIES:
            for shard in range(s.click_shards):
                removed, state = await trim_shard(self.redis, shard, retention_s=s.stream_retention_s,
                                                  max_retention_s=s.stream_max_retention_s,
                                                  stream=family.stream(shard), dead=family.dead(shard))
                for g in state.groups:
                    if g.overdue:
                        log.warning("consumer group lags beyond the maximum retention; not trimming past it",
                                    extra={"shard": shard, "stream": state.stream, "group": g.group,
                                           "oldest_unacked_age_s": g.oldest_unacked_age_s})
                if removed:
                    log.info("stream trimmed", extra={"stream": state.stream, "removed": removed})
                await self._forget_idle_consumers(family.stream(shard))

    async def _forget_idle_consumers(self, stream: str) -> None:
        """Remove consumers of dead workers that own nothing any more (idle > 1 hour)."""
        for c in await self.redis.xinfo_consumers(stream, k.GROUP):
            name = c["name"].decode() if isinstance(c["name"], bytes) else str(c["name"])
            if name != self.consumer and int(c["pending"]) == 0 and int(c["idle"]) > 3_600_000:
                await self.redis.xgroup_delconsumer(stream, k.GROUP, name)

    async def _forget_self(self) -> None:
        """On a clean exit, leave no empty consumer behind (never one that still owns entries)."""
        for stream in [f.stream(shard) for f in FAMILIES for shard in range(self.settings.click_shards)]:
            for c in await self.redis.xinfo_consumers(stream, k.GROUP):
                name = c["name"].decode() if isinstance(c["name"], bytes) else str(c["name"])
                if name == self.consumer and int(c["pending"]) == 0:
                    await self.redis.xgroup_delconsumer(stream, k.GROUP, name)

    def register_metrics(self, registry: Registry) -> None:
        """This worker's totals on a registry (`shoplink count`'s /metrics, when it serves one)."""
        helps = {"read": "Stream entries read (new and reclaimed).",
                 "applied": "Events counted.",
                 "duplicates": "Events seen again (replays, reclaims) and not counted twice.",
                 "dead": "Malformed entries moved to the dead-letter stream.",
                 "batches": "Batches applied.",
                 "claimed": "Entries reclaimed from idle consumers (XAUTOCLAIM)."}
        totals = {field: registry.counter(f"shoplink_count_{field}_total", text)
                  for field, text in helps.items()}

        async def collect() -> None:
            for field, metric in totals.items():
                metric.set(getattr(self.stats, field))

        registry.register_collector(collect)

    async def _log_stats(self) -> None:
        log.info("count worker progress", extra={"consumer": self.consumer, **asdict(self.stats)})

    async def _shard_loop(self, shard: int, family: Family = CLICKS) -> None:
        stream = family.stream(shard)
        s = self.settings
        claim_every = max(0.05, s.count_claim_idle_ms / 2000)
        next_claim = 0.0
        block = min(s.count_block_ms, 200) if self.exit_when_idle else s.count_block_ms
        # While a full batch is applied, the next one is already being read: Redis then always
        # has work queued (XREADGROUP of this shard, EVALSHA of another) while Python parses.
        prefetch: asyncio.Future[Any] | None = None
        try:
            while not self._stop.is_set():
                try:
                    if time.monotonic() >= next_claim:
                        await self._claim(shard, family)
                        next_claim = time.monotonic() + claim_every
                    reading, prefetch = prefetch, None
                    raw = await (reading or self._read(shard, stream, block))
                    entries = _entries(self._stream_entries(raw))
                    if entries:
                        if len(entries) >= s.count_batch:
                            prefetch = asyncio.ensure_future(self._read(shard, stream, block))
                        await self._process(shard, entries, family)
                        continue
                    if self.exit_when_idle and await self._group_pending(stream) == 0:
                        return
                except (RedisError, OSError) as exc:
                    log.warning("count shard loop error; retrying", extra={"shard": shard, "error": repr(exc)})
                    self.topology.request_refresh(exc)
                    await asyncio.sleep(0.5)
                    if "NOGROUP" in str(exc):  # the stream's node restarted empty (no persistence)
                        with contextlib.suppress(RedisError, OSError):
                            await ensure_group(self.redis, stream)
        finally:
            if prefetch is not None:  # entries it read stay pending: reclaimed like a crash's
                prefetch.cancel()
                with contextlib.suppress(asyncio.CancelledError, RedisError, OSError):
                    await prefetch

    async def _read(self, shard: int, stream: str, block: int) -> Any:
        return await self.topology.stream_reader(shard).execute_command(  # type: ignore[no-untyped-call]
            "XREADGROUP", "GROUP", k.GROUP, self.consumer, "COUNT", self.settings.count_batch,
            "BLOCK", block, "STREAMS", stream, ">")

    @staticmethod
    def _stream_entries(raw: Any) -> Any:
        if not raw:
            return None
        if isinstance(raw, dict):
            return next(iter(raw.values()))
        return raw[0][1]

    async def _group_pending(self, stream: str) -> int:
        summary = await self.redis.xpending(stream, k.GROUP)
        return int(summary["pending"])

    async def _claim(self, shard: int, family: Family = CLICKS) -> None:
        stream = family.stream(shard)
        cursor: Any = "0-0"
        while True:
            reply = await self.redis.xautoclaim(stream, k.GROUP, self.consumer,
                                                self.settings.count_claim_idle_ms, cursor,
                                                count=self.settings.count_batch)
            cursor, raw = reply[0], reply[1]
            entries = _entries(raw)
            if entries:
                self.stats.claimed += len(entries)
                log.info("reclaimed pending entries", extra={"stream": stream, "count": len(entries)})
                await self._process(shard, entries, family)
            if len(reply) > 2 and reply[2]:  # ids deleted from the stream while pending
                await self.redis.xack(stream, k.GROUP, *reply[2])
            if cursor in (b"0-0", "0-0"):
                return

    async def _process(self, shard: int, entries: list[Entry], family: Family = CLICKS) -> None:
        stream = family.stream(shard)
        dead: list[tuple[bytes, bytes | None, str]] = []
        payloads = [payload for _, payload, exists in entries if payload is not None]
        events = family.parse_all(payloads) if len(payloads) == len(entries) else None
        if events is None:  # something in the batch is off: one by one, to find what and why
            events = []
            for sid, payload, exists in entries:
                if payload is None and not exists:
                    continue  # trimmed while pending: nothing left to count
                try:
                    events.append(family.parse_one(payload))
                except Malformed as exc:
                    dead.append((sid, payload, str(exc)))
        self.stats.read += len(entries)
        ids = [sid for sid, _, _ in entries]
        checkpoint = self.checkpoint
        if checkpoint is not None:
            checkpoint("after_read", shard, ids)
        # Each atomic Lua call applies at most SHOPLINK_COUNT_APPLY_CHUNK distinct increments
        # (Applier.apply_bounded): calls stay short whatever the events, and as big as that allows.
        if events:
            mid: Callable[[], None] | None = None
            if checkpoint is not None:
                reached: Checkpoint = checkpoint
                mid = lambda: reached("mid_batch", shard, ids)  # noqa: E731
            result = await self.applier.apply_bounded(shard, events, funnel=family.funnel,
                                                      limit=self.settings.count_apply_chunk, after_first=mid)
            self.stats.applied += result.applied
            self.stats.duplicates += result.duplicates
        if checkpoint is not None:
            checkpoint("after_apply", shard, ids)
        if dead:
            pipe = self.redis.pipeline(transaction=False)
            for sid, payload, reason in dead:
                fields: dict[Any, Any] = {"reason": reason, "stream": stream, "id": sid,
                                          "consumer": self.consumer}
                if payload is not None:
                    fields["e"] = payload
                pipe.xadd(family.dead(shard), fields)
            await pipe.execute()
            self.stats.dead += len(dead)
            log.warning("malformed events moved to the dead-letter stream",
                        extra={"stream": stream, "count": len(dead), "first_reason": dead[0][2]})
        await call(self.topology.for_shard(shard), pack_ids(["XACK", stream, k.GROUP], ids))
        self.stats.batches += 1
