"""Consistent reads of counters: PostgreSQL history + what is still in Redis, each click once.

For every shard the Redis part is the live hash plus, while a roll-up move is in progress, the
moving hash (rollup.py). The moving hash is added only if PostgreSQL has not applied that move
yet (`click_rollup_shards.last_seq < mvseq`). To be sure nothing moved between the Redis read and
the PostgreSQL read, `moveseq` and `mvseq` of every shard are read before and re-checked after
the PostgreSQL read; if any changed (a move started or finished in between), the read is retried.
Unique viewers are HyperLogLog unions of PostgreSQL's and Redis' sketches: a union cannot count
a viewer twice, so they need no such care.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg

from shoplink.analytics import keys as k
from shoplink.analytics import repository as repo
from shoplink.db import Conn
from shoplink.errors import ServiceUnavailable
from shoplink.redis import AnyRedis

T = TypeVar("T")
_RETRIES = 8

UNION_LUA = r"""
-- KEYS[1]: a temp key prefix in one slot. ARGV: n blobs, the blobs, then groups (a count and
-- blob indexes) whose union to count. Returns the count of each group, then of all blobs.
local n = tonumber(ARGV[1])
local names = {}
for i = 1, n do
  names[i] = KEYS[1] .. ':' .. i
  redis.call('SET', names[i], ARGV[1 + i], 'PX', 60000)
end
local out = {}
local pos = n + 2
while pos <= #ARGV do
  local c = tonumber(ARGV[pos])
  local group = {}
  for j = 1, c do group[j] = names[tonumber(ARGV[pos + j])] end
  out[#out + 1] = redis.call('PFCOUNT', unpack(group))
  pos = pos + 1 + c
end
out[#out + 1] = redis.call('PFCOUNT', unpack(names))
redis.call('DEL', unpack(names))
return out
"""


def _dt(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _int(value: Any) -> int:
    return int(value) if value is not None else 0


class CounterReader:
    """Reads one namespace; `pool=None` reads Redis only (a rebuild namespace has no history)."""

    def __init__(self, redis: AnyRedis, pool: asyncpg.Pool | None, shards: int,
                 buckets: tuple[int, int, int], ns: str = k.LIVE_NS) -> None:
        self.redis = redis
        self.pool = pool
        self.shards = shards
        self.buckets = buckets
        self.ns = ns
        self._union = redis.register_script(UNION_LUA)

    async def _read(self, key_of: Callable[[int], str],
                    pg_fetch: Callable[[Conn], Awaitable[T]]) -> tuple[T | None, list[dict[bytes, bytes]]]:
        """(PostgreSQL part, the Redis hashes to add) for one logical hash on every shard."""
        ns = self.ns
        for _ in range(_RETRIES):
            pipe = self.redis.pipeline(transaction=False)
            for shard in range(self.shards):
                key = key_of(shard)
                pipe.get(k.moveseq(shard, ns))
                pipe.get(k.mvseq(shard, ns))
                pipe.hgetall(key)
                pipe.hgetall(k.moving(key, shard, ns))
            first = await pipe.execute()
            if self.pool is None:
                return None, [h for i, h in enumerate(first) if i % 4 in (2, 3) and h]
            async with self.pool.acquire() as con, con.transaction(isolation="repeatable_read",
                                                                    readonly=True):
                history = await pg_fetch(con)
                applied = await repo.shard_seqs(con)
            pipe = self.redis.pipeline(transaction=False)
            for shard in range(self.shards):
                pipe.get(k.moveseq(shard, ns))
                pipe.get(k.mvseq(shard, ns))
            again = await pipe.execute()
            if any(again[2 * s] != first[4 * s] or again[2 * s + 1] != first[4 * s + 1]
                   for s in range(self.shards)):
                continue  # a move started or finished meanwhile: read again
            parts: list[dict[bytes, bytes]] = []
            for shard in range(self.shards):
                live, moving, mvseq = first[4 * shard + 2], first[4 * shard + 3], first[4 * shard + 1]
                if live:
                    parts.append(live)
                if moving and mvseq is not None and applied.get(shard, 0) < int(mvseq):
                    parts.append(moving)
            return history, parts
        raise ServiceUnavailable("counters are being rolled up; try again", code="stats_busy")

    async def counts(self, kind: str, entity_id: int, granularity: str, start_s: int,
                     end_s: int) -> dict[int, list[int]]:
        """bucket start (s) -> 12 counts (keys.PAIRS order), for buckets in [start_s, end_s)."""
        size = self.buckets[k.GRANULARITIES.index(granularity)]

        async def fetch(con: Conn) -> list[tuple[int, list[int]]]:
            return await repo.fetch_counts(con, kind, entity_id, granularity, _dt(start_s), _dt(end_s))

        history, parts = await self._read(lambda s: k.counts(s, kind, entity_id, self.ns), fetch)
        out: dict[int, list[int]] = {}
        for bucket, pg_row in history or ():
            out[bucket] = list(pg_row)
        for part in parts:  # Redis counts minutes; an hour or a day is the sum of its minutes
            for name, value in part.items():
                b_raw, _, code = name.partition(b":")
                minute = int(b_raw)
                bucket = minute - minute % size
                if start_s <= bucket < end_s:
                    row = out.get(bucket)
                    if row is None:
                        out[bucket] = row = [0] * len(k.PAIRS)
                    row[k.PAIR_INDEX[code.decode()]] += int(value)
        return out

    async def heatmap(self, video_id: int) -> dict[int, int]:
        async def fetch(con: Conn) -> dict[int, int]:
            return await repo.fetch_heatmap(con, video_id)

        history, parts = await self._read(lambda s: k.heatmap(s, video_id, self.ns), fetch)
        out = dict(history or {})
        for part in parts:
            for name, value in part.items():
                second = int(name)
                out[second] = out.get(second, 0) + int(value)
        return out

    async def top(self, parent_kind: str, parent_id: int) -> dict[int, int]:
        async def fetch(con: Conn) -> dict[int, int]:
            return await repo.fetch_top(con, parent_kind, parent_id)

        history, parts = await self._read(lambda s: k.top(s, parent_kind, parent_id, self.ns), fetch)
        out = dict(history or {})
        for part in parts:
            for name, value in part.items():
                child = int(name)
                out[child] = out.get(child, 0) + int(value)
        return out

    async def uniques(self, kind: str, entity_id: int, start_s: int,
                      end_s: int) -> tuple[int, dict[int, int]]:
        """(unique human viewers over the days touched by [start_s, end_s), per day)."""
        day = self.buckets[2]
        first_day = start_s - start_s % day
        days = list(range(first_day, end_s, day))
        history: list[tuple[int, bytes, int]] = []
        if self.pool is not None:
            async with self.pool.acquire() as con:
                history = await repo.fetch_uniques(con, kind, entity_id, _dt(first_day), _dt(end_s))
        pipe = self.redis.pipeline(transaction=False)
        for d in days:
            for shard in range(self.shards):
                pipe.get(k.uniques(shard, kind, entity_id, d, self.ns))
        blobs = await pipe.execute()
        blobs_by_day: dict[int, list[bytes]] = {}
        per_day: dict[int, int] = {}
        for d, blob, viewers in history:
            blobs_by_day.setdefault(d, []).append(bytes(blob))
            per_day[d] = viewers
        fresh: set[int] = set()
        for i, blob in enumerate(blobs):
            if blob:
                d = days[i // self.shards]
                blobs_by_day.setdefault(d, []).append(blob)
                fresh.add(d)
        if not blobs_by_day:
            return 0, {}
        if len(blobs_by_day) == 1 and not fresh:
            return next(iter(per_day.values())), per_day
        # PFCOUNT of several keys counts their union: one per day that has a fresh part
        # (PostgreSQL's count is final for the others), and one over everything.
        flat: list[bytes] = []
        index: dict[int, list[int]] = {}
        for d, day_blobs in blobs_by_day.items():
            index[d] = list(range(len(flat) + 1, len(flat) + 1 + len(day_blobs)))
            flat.extend(day_blobs)
        order = sorted(fresh)
        args: list[Any] = [len(flat), *flat]
        for d in order:
            args.append(len(index[d]))
            args.extend(index[d])
        counts = await self._union(keys=[k.tmp(0, secrets.token_hex(6), self.ns)], args=args)
        for d, n in zip(order, counts, strict=False):
            per_day[d] = _int(n)
        return _int(counts[-1]), per_day
