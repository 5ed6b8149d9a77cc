"""Consistent reads of counters: PostgreSQL history + what is still in Redis, each click once.

For every shard the Redis part is the live hashes plus, while a roll-up move is in progress, the
moving hashes (rollup.py): for an entity, the hashes of the combos that name it (keys.py), found
with SSCAN ... MATCH in the shard's `dirty` (live) and `mvkeys` (moving) sets. A moving hash is
added only if PostgreSQL has not applied that move yet (`click_rollup_shards.last_seq < mvseq`).
To be sure nothing moved between the Redis read and the PostgreSQL read, `moveseq` and `mvseq` of
every shard are read before and re-checked after the PostgreSQL read; if any changed (a move
started or finished in between), the read is retried. Unique viewers are HyperLogLog unions of
PostgreSQL's and Redis' sketches: a union cannot count a viewer twice, so they only need the
order of reads described in `uniques`.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

import asyncpg

from shoplink.analytics import keys as k
from shoplink.analytics import repository as repo
from shoplink.db import Conn
from shoplink.errors import ServiceUnavailable
from shoplink.redis import AnyRedis

T = TypeVar("T")
_RETRIES = 8
_SCAN_COUNT = 10_000


class Match(NamedTuple):
    """A MATCH pattern for the combo ids of one entity (keys.combo_match)."""

    pattern: str


Key = str | Match  # one known hash, or the combo hashes that match
Part = tuple[Any, dict[bytes, bytes]]  # (key name, fields) of a Redis hash to add


def _combo_of(key: Any) -> str:
    """The combo id of a (live or moving) combo hash name."""
    name = key.decode() if isinstance(key, bytes) else str(key)
    return name.rpartition(":")[2]

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


_HUMAN_CLICK_CODES = frozenset(("h" + k.OUTCOME_CODE[o]).encode() for o in k.OUTCOMES)


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

    async def _scan_all(self, set_key: str, pattern: str, cursor: Any = 0,
                        found: list[Any] | None = None) -> list[Any]:
        found = [] if found is None else found
        while True:
            cursor, members = await self.redis.sscan(set_key, cursor, match=pattern, count=_SCAN_COUNT)
            found.extend(members)
            if int(cursor) == 0:
                return found

    async def _scan(self, wanted: list[tuple[str, str]], *, in_order: bool = False) -> list[list[Any]]:
        """The members of each (set, pattern) that match (SSCAN MATCH; the sets hold what was
        written since the last roll-up): the first page of every set in one round trip, then
        the rest of the sets that have more. `in_order`: every set is scanned completely before
        the next one is (from the first set that needs a second page on, one by one)."""
        pipe = self.redis.pipeline(transaction=False)
        for set_key, pattern in wanted:
            pipe.sscan(set_key, 0, match=pattern, count=_SCAN_COUNT)
        out: list[list[Any]] = []
        for i, ((set_key, pattern), (cursor, members)) in enumerate(
                zip(wanted, await pipe.execute(), strict=True)):
            if int(cursor) != 0 and in_order:  # later first pages were read too early: again
                out.append(await self._scan_all(set_key, pattern, cursor, list(members)))
                for later_key, later_pattern in wanted[i + 1:]:
                    out.append(await self._scan_all(later_key, later_pattern))
                return out
            out.append(list(members) if int(cursor) == 0
                       else await self._scan_all(set_key, pattern, cursor, list(members)))
        return out

    async def _locate(self, finds: list[Key]) -> list[tuple[list[Any], list[Any]]]:
        """(live hashes, moving hashes) of each shard that `finds[shard]` designates."""
        wanted: list[tuple[str, str]] = []
        for shard, find in enumerate(finds):
            if isinstance(find, Match):
                prefix = k.shard_prefix(shard, self.ns)
                wanted.append((k.dirty(shard, self.ns), prefix + "c:" + find.pattern))
                wanted.append((k.mvkeys(shard, self.ns), prefix + "mv:c:" + find.pattern))
        scanned = iter(await self._scan(wanted)) if wanted else iter(())
        out: list[tuple[list[Any], list[Any]]] = []
        for shard, find in enumerate(finds):
            if isinstance(find, str):  # one known key
                out.append(([find], [k.moving(find, shard, self.ns)]))
            else:
                out.append((next(scanned), next(scanned)))
        return out

    async def _read(self, find: Callable[[int], Key],
                    pg_fetch: Callable[[Conn], Awaitable[T]]) -> tuple[T | None, list[Part]]:
        """(PostgreSQL part, the Redis hashes to add, by name) for one logical hash, or for the
        combos of one entity, on every shard."""
        ns = self.ns
        for _ in range(_RETRIES):
            pipe = self.redis.pipeline(transaction=False)
            for shard in range(self.shards):
                pipe.get(k.moveseq(shard, ns))
                pipe.get(k.mvseq(shard, ns))
            seqs = await pipe.execute()
            located = await self._locate([find(shard) for shard in range(self.shards)])
            pipe = self.redis.pipeline(transaction=False)
            for live, moving in located:
                for key in (*live, *moving):
                    pipe.hgetall(key)
            contents = iter(await pipe.execute())
            found = [([(key, next(contents)) for key in live], [(key, next(contents)) for key in moving])
                     for live, moving in located]
            if self.pool is None:
                return None, [part for live, moving in found for part in (*live, *moving) if part[1]]
            async with self.pool.acquire() as con, con.transaction(isolation="repeatable_read",
                                                                    readonly=True):
                history = await pg_fetch(con)
                applied = await repo.shard_seqs(con)
            pipe = self.redis.pipeline(transaction=False)
            for shard in range(self.shards):
                pipe.get(k.moveseq(shard, ns))
                pipe.get(k.mvseq(shard, ns))
            if await pipe.execute() != seqs:
                continue  # a move started or finished meanwhile: read again
            parts: list[Part] = []
            for shard, (live, moving) in enumerate(found):
                mvseq = seqs[2 * shard + 1]
                parts.extend(part for part in live if part[1])
                if mvseq is not None and applied.get(shard, 0) < int(mvseq):
                    parts.extend(part for part in moving if part[1])
            return history, parts
        raise ServiceUnavailable("counters are being rolled up; try again", code="stats_busy")

    def _combos(self, kind: str, entity_id: int) -> Callable[[int], Key]:
        match = Match(k.combo_match(kind, entity_id))
        return lambda shard: match

    async def counts(self, kind: str, entity_id: int, granularity: str, start_s: int,
                     end_s: int) -> dict[int, list[int]]:
        """bucket start (s) -> 12 counts (keys.PAIRS order), for buckets in [start_s, end_s)."""
        size = self.buckets[k.GRANULARITIES.index(granularity)]

        async def fetch(con: Conn) -> list[tuple[int, list[int]]]:
            return await repo.fetch_counts(con, kind, entity_id, granularity, _dt(start_s), _dt(end_s))

        history, parts = await self._read(self._combos(kind, entity_id), fetch)
        out: dict[int, list[int]] = {}
        for bucket, pg_row in history or ():
            out[bucket] = list(pg_row)
        for _, part in parts:  # Redis counts minutes; an hour or a day is the sum of its minutes
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

    async def heatmap(self, video_id: int, *, views: bool = False) -> dict[int, int]:
        """second -> human clicks; with `views`, -> human impressions (the view map)."""
        async def fetch(con: Conn) -> dict[int, int]:
            return await repo.fetch_heatmap(con, video_id, "impressions" if views else "clicks")

        key = k.viewmap if views else k.heatmap
        history, parts = await self._read(lambda s: key(s, video_id, self.ns), fetch)
        out = dict(history or {})
        for _, part in parts:
            for name, value in part.items():
                second = int(name)
                out[second] = out.get(second, 0) + int(value)
        return out

    async def top(self, parent_kind: str, parent_id: int) -> dict[int, int]:
        """child id -> human clicks (see `top_funnel`)."""
        return {child: pair[0] for child, pair in (await self.top_funnel(parent_kind, parent_id)).items()
                if pair[0]}

    async def top_funnel(self, parent_kind: str, parent_id: int) -> dict[int, list[int]]:
        """child id -> [human clicks, human impressions] (anchors of a video or live session,
        products of a shop or creator): PostgreSQL's list plus the parent's combos in Redis."""
        async def fetch(con: Conn) -> dict[int, tuple[int, int]]:
            return await repo.fetch_top(con, parent_kind, parent_id)

        history, parts = await self._read(self._combos(parent_kind, parent_id), fetch)
        out = {child: list(pair) for child, pair in (history or {}).items()}
        child_kind = k.TOP_CHILD[parent_kind]
        for key, part in parts:
            child = dict(k.combo_entities(_combo_of(key))).get(child_kind)
            if child is None:
                continue
            human = impressions = 0
            for name, v in part.items():
                code = name.partition(b":")[2]
                if code in _HUMAN_CLICK_CODES:
                    human += int(v)
                elif code == b"hi":
                    impressions += int(v)
            if human or impressions:
                row = out.setdefault(child, [0, 0])
                row[0] += human
                row[1] += impressions
        return out

    async def uniques(self, kind: str, entity_id: int, start_s: int,
                      end_s: int, measure: str = "click") -> tuple[int, dict[int, int]]:
        """(unique human viewers over the days touched by [start_s, end_s), per day).

        PostgreSQL holds, per entity and day, the union of every HyperLogLog rolled up so far;
        Redis adds the combo HyperLogLogs not yet unioned into it: those in `udirty` or in its
        `:proc` copy (a roll-up in progress). They are looked for in that order, and before
        PostgreSQL is read: a HyperLogLog that leaves `udirty` is in `:proc`, and one that leaves
        `:proc` is in PostgreSQL (committed first). Unions are idempotent, so seeing one twice is
        harmless. `measure`: viewers who clicked ("click") or who were shown a card
        ("impression", the `ui:` HyperLogLogs)."""
        day = self.buckets[2]
        family = "ui:" if measure == "impression" else "u:"
        first_day = start_s - start_s % day
        pattern = k.combo_match(kind, entity_id)
        wanted_sets: list[tuple[str, str]] = []
        for shard in range(self.shards):
            prefix = k.shard_prefix(shard, self.ns)
            for set_key in (k.udirty(shard, self.ns), k.udirty(shard, self.ns) + ":proc"):
                wanted_sets.append((set_key, prefix + family + pattern))
        names = [name for found in await self._scan(wanted_sets, in_order=True) for name in found]
        wanted: list[tuple[int, bytes]] = []
        for name in set(names):
            d = int(name.rpartition(b":")[2])
            if first_day <= d < end_s:
                wanted.append((d, name))
        blobs: list[Any] = []
        if wanted:
            pipe = self.redis.pipeline(transaction=False)
            for _, name in wanted:
                pipe.get(name)
            blobs = await pipe.execute()
        history: list[tuple[int, bytes, int]] = []
        if self.pool is not None:
            async with self.pool.acquire() as con:
                history = await repo.fetch_uniques(con, kind, entity_id, _dt(first_day), _dt(end_s), measure)
        blobs_by_day: dict[int, list[bytes]] = {}
        per_day: dict[int, int] = {}
        for d, blob, viewers in history:
            blobs_by_day.setdefault(d, []).append(bytes(blob))
            per_day[d] = viewers
        fresh: set[int] = set()
        for (d, _), blob in zip(wanted, blobs, strict=True):
            if blob:
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
