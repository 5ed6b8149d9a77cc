"""`shoplink count --rebuild`: recompute every counter from the events retained in the streams
(the click streams and the player's event streams),
into a fresh namespace (`slarb:{n}:...`, never the live counters), and compare with the live
counts (Redis + PostgreSQL) bucket by bucket.

Only buckets that the retained events cover completely are compared: with --from/--to, the
buckets inside [from, to); without, every bucket from the first retained event on (from the next
bucket when the stream has been trimmed, since older events of that bucket are gone), within each
granularity's retention. Events are deduplicated by event id, exactly like the worker does.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from redis.asyncio import Redis

from shoplink.analytics import keys as k
from shoplink.analytics import repository as repo
from shoplink.analytics.apply import Applier
from shoplink.analytics.events import Malformed, Row, parse
from shoplink.analytics.funnel_events import parse_one
from shoplink.analytics.reader import CounterReader
from shoplink.config import Settings
from shoplink.redis import AnyRedis, RedisTopology, topology_of

PAGE = 10_000


@dataclass
class RebuildReport:
    events: int = 0
    malformed: int = 0
    duplicates: int = 0
    outside_range: int = 0
    entities: int = 0
    compared_buckets: int = 0
    compared_days: int = 0
    mismatches: list[dict[str, Any]] = field(default_factory=list)
    trimmed: bool = False

    @property
    def equal(self) -> bool:
        return not self.mismatches

    def to_json(self) -> dict[str, Any]:
        return {"events": self.events, "malformed": self.malformed, "duplicates": self.duplicates,
                "outside_range": self.outside_range, "entities": self.entities,
                "compared_buckets": self.compared_buckets, "compared_days": self.compared_days,
                "streams_trimmed": self.trimmed, "equal": self.equal,
                "mismatches": self.mismatches[:50], "mismatch_count": len(self.mismatches)}


def _ceil(value: int, size: int) -> int:
    return value if value % size == 0 else value - value % size + size


async def clear_namespace(redis: AnyRedis, ns: str) -> int:
    removed = 0
    batch: list[Any] = []
    async for key in redis.scan_iter(match=f"{ns}:*", count=1000):
        batch.append(key)
        if len(batch) >= 1000:
            removed += await redis.delete(*batch)
            batch = []
    if batch:
        removed += await redis.delete(*batch)
    return removed


async def rebuild(topology: Redis | RedisTopology, pool: asyncpg.Pool, settings: Settings, *,
                  start_s: int | None = None, end_s: int | None = None,
                  keep: bool = False) -> RebuildReport:
    topo = topology_of(topology)
    redis = topo.client
    ns = k.REBUILD_NS
    report = RebuildReport()
    await clear_namespace(redis, ns)
    applier = Applier(topo, buckets=settings.stats_buckets, dedup_ttl_s=settings.count_dedup_retention_s,
                      uniques_ttl_s=settings.stats_uniques_ttl_s,
                      heatmap_bucket_s=settings.stats_heatmap_bucket_s, ns=ns)
    lo_ms = None if start_s is None else start_s * 1000
    hi_ms = None if end_s is None else end_s * 1000
    first_ts: int | None = None
    last_ts: int | None = None
    families = ((k.stream, False), (k.event_stream, True))
    for key_of, funnel, shard in ((f, funnel, s) for f, funnel in families for s in range(settings.click_shards)):
        stream = key_of(shard)
        info_trimmed = await _trimmed(redis, stream)
        report.trimmed = report.trimmed or info_trimmed
        cursor = "-"
        while True:
            rows = await redis.xrange(stream, min=cursor, max="+", count=PAGE)
            if not rows:
                break
            events: list[Row] = []
            for _, fields in rows:
                try:
                    payload = fields.get(b"e") if fields else None
                    raw = payload if isinstance(payload, bytes) else None
                    ev = parse_one(raw) if funnel else parse(raw)
                except Malformed:
                    report.malformed += 1
                    continue
                ts_ms = ev[1]  # an event's or a batch's time
                if (lo_ms is not None and ts_ms < lo_ms) or (hi_ms is not None and ts_ms >= hi_ms):
                    report.outside_range += 1
                    continue
                events.append(ev)
                first_ts = ts_ms if first_ts is None else min(first_ts, ts_ms)
                last_ts = ts_ms if last_ts is None else max(last_ts, ts_ms)
            result = await applier.apply_bounded(shard, events, funnel=funnel, limit=settings.count_apply_chunk)
            report.events += result.applied
            report.duplicates += result.duplicates
            last_id = rows[-1][0]
            cursor = "(" + (last_id.decode() if isinstance(last_id, bytes) else str(last_id))
            if len(rows) < PAGE:
                break
    if first_ts is not None and last_ts is not None:
        await _compare(redis, pool, settings, report, first_ts // 1000, last_ts // 1000,
                       start_s, end_s)
    if not keep:
        await clear_namespace(redis, ns)
    return report


async def _trimmed(redis: AnyRedis, stream: str) -> bool:
    if not await redis.exists(stream):
        return False
    info = await redis.xinfo_stream(stream)
    deleted = info.get("max-deleted-entry-id") or b"0-0"
    deleted = deleted.decode() if isinstance(deleted, bytes) else str(deleted)
    return deleted != "0-0" or int(info.get("entries-added") or 0) != int(info["length"])


async def _entities(redis: AnyRedis, pool: asyncpg.Pool, settings: Settings,
                    lo: int, hi: int) -> set[tuple[str, int]]:
    found: set[tuple[str, int]] = set()
    for ns in (k.REBUILD_NS, k.LIVE_NS):
        async for key in redis.scan_iter(match=f"{ns}:*:c:*", count=1000):
            name = key.decode() if isinstance(key, bytes) else str(key)
            parts = name.split(":")
            if parts[2] == "mv":
                parts = parts[:2] + parts[3:]
            if len(parts) == 4:  # NS, {n}, c, combo
                found.update(k.combo_entities(parts[3]))
            elif len(parts) == 5:  # NS, {n}, c, kind, id (earlier versions)
                found.add((parts[3], int(parts[4])))
    async with pool.acquire() as con:
        found.update(await repo.entities_between(
            con, datetime.fromtimestamp(lo, UTC), datetime.fromtimestamp(hi, UTC)))
    return found


async def _compare(redis: AnyRedis, pool: asyncpg.Pool, settings: Settings, report: RebuildReport,
                   first_s: int, last_s: int, start_s: int | None, end_s: int | None) -> None:
    live = CounterReader(redis, pool, settings.click_shards, settings.stats_buckets)
    rebuilt = CounterReader(redis, None, settings.click_shards, settings.stats_buckets, ns=k.REBUILD_NS)
    now = int(time.time())
    retention = (settings.stats_minute_retention_s, settings.stats_hour_retention_s,
                 settings.stats_day_retention_s)
    entities = await _entities(redis, pool, settings, first_s, last_s + 1)
    report.entities = len(entities)
    for kind, eid in sorted(entities):
        for gran, size, keep in zip(k.GRANULARITIES, settings.stats_buckets, retention, strict=True):
            if start_s is not None:
                lo = _ceil(start_s, size)
            elif report.trimmed:
                lo = _ceil(first_s + 1, size)
            else:
                lo = first_s - first_s % size
            hi = (end_s - end_s % size) if end_s is not None else _ceil(last_s + 1, size)
            if keep:
                lo = max(lo, _ceil(now - keep, size))
            if lo >= hi:
                continue
            a = await live.counts(kind, eid, gran, lo, hi)
            b = await rebuilt.counts(kind, eid, gran, lo, hi)
            for bucket in sorted(set(a) | set(b)):
                x = a.get(bucket, [0] * len(k.PAIRS))
                y = b.get(bucket, [0] * len(k.PAIRS))
                report.compared_buckets += 1
                if x != y:
                    report.mismatches.append({"kind": kind, "id": eid, "granularity": gran,
                                              "bucket": bucket, "live": x, "rebuilt": y})
            if gran != "day":
                continue
            for measure in ("click", "impression"):
                _, ua = await live.uniques(kind, eid, lo, hi, measure)
                _, ub = await rebuilt.uniques(kind, eid, lo, hi, measure)
                for day in sorted(set(ua) | set(ub)):
                    if lo <= day < hi:
                        report.compared_days += 1
                        if ua.get(day, 0) != ub.get(day, 0):
                            report.mismatches.append({"kind": kind, "id": eid, "granularity": "day",
                                                      "bucket": day, "measure": measure,
                                                      "live_unique_viewers": ua.get(day, 0),
                                                      "rebuilt_unique_viewers": ub.get(day, 0)})
