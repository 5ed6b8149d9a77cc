"""Moving counters from Redis into PostgreSQL, exactly once, so history survives Redis.

Additive hashes (combo counts, video heatmaps) are *moved*: Redis keeps only increments that have
not reached PostgreSQL yet. A combo hash (keys.py) becomes the counts of each of its entities and
the top-N clicks of its video / live session / shop / creator on the way. One move of shard n:

1. `MOVE_LUA` (atomic): unless a move is already in progress, take up to `max_keys` dirty hashes,
   RENAME each to its moving name, number the move (`moveseq`, never below PostgreSQL's last
   applied number, so a Redis flush cannot reuse a number) and record it in `mvseq`/`mvkeys`.
   If a move is in progress (a previous run crashed), it is returned instead and finished.
2. One PostgreSQL transaction locks the shard's row in `click_rollup_shards`; if its `last_seq`
   is already >= the move's number, the move was applied before (crash after commit) and is
   skipped; otherwise the increments are added and `last_seq` set to the move's number.
3. `FINISH_LUA` deletes the moving hashes, if the move is still the current one.

A crash anywhere re-runs the same move, which step 2 applies at most once. Readers add PostgreSQL,
the live hashes and the moving ones unless PostgreSQL already has that move (see service.py).

Unique-viewer HyperLogLogs are *unioned* instead (a union is idempotent): an entity's day in
PostgreSQL becomes union(PostgreSQL, the Redis HyperLogLogs of its combos for that day) and the
Redis ones expire after their TTL.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from redis.asyncio import Redis

from shoplink.analytics import keys as k
from shoplink.analytics import repository as repo
from shoplink.redis import AnyRedis
from shoplink.resp import call_many, pack

log = logging.getLogger(__name__)

MOVE_LUA = r"""
local cur = redis.call('GET', KEYS[3])
if cur then return {tonumber(cur), redis.call('SMEMBERS', KEYS[2])} end
local ks = redis.call('SPOP', KEYS[1], tonumber(ARGV[3]))
if #ks == 0 then return {0, {}} end
local floor = tonumber(ARGV[1])
local s = redis.call('INCR', KEYS[4])
if s <= floor then
  s = floor + 1
  redis.call('SET', KEYS[4], s)
end
local plen = string.len(ARGV[2])
local moved = {}
for i = 1, #ks do
  local key = ks[i]
  if redis.call('EXISTS', key) == 1 then
    local nk = ARGV[2] .. 'mv:' .. string.sub(key, plen + 1)
    redis.call('RENAME', key, nk)
    moved[#moved + 1] = nk
  end
end
if #moved == 0 then return {0, {}} end
local i = 1
while i <= #moved do
  local e = math.min(i + 999, #moved)
  redis.call('SADD', KEYS[2], unpack(moved, i, e))
  i = e + 1
end
redis.call('SET', KEYS[3], s)
return {s, moved}
"""

FINISH_LUA = r"""
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
local ks = redis.call('SMEMBERS', KEYS[1])
local i = 1
while i <= #ks do
  local e = math.min(i + 999, #ks)
  redis.call('DEL', unpack(ks, i, e))
  i = e + 1
end
redis.call('DEL', KEYS[1], KEYS[2])
return 1
"""

TAKE_UDIRTY_LUA = r"""
if redis.call('EXISTS', KEYS[2]) == 0 and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('RENAME', KEYS[1], KEYS[2])
end
return redis.call('SMEMBERS', KEYS[2])
"""

# Union of Redis HyperLogLogs (KEYS[2..], the combos of one entity and day) with PostgreSQL's
# copy (ARGV[1], may be empty), in a temp key (KEYS[1]).
MERGE_HLL_LUA = r"""
if ARGV[1] ~= '' then
  redis.call('SET', KEYS[1], ARGV[1])
end
redis.call('PFMERGE', KEYS[1], unpack(KEYS, 2))
local b = redis.call('GET', KEYS[1])
local n = redis.call('PFCOUNT', KEYS[1])
redis.call('DEL', KEYS[1])
return {b, n}
"""

def _fields(reply: Any) -> dict[bytes, bytes]:
    """An HGETALL reply: a map (RESP3) or a flat list of fields and values (RESP2)."""
    if isinstance(reply, dict):
        return reply
    pairs = iter(reply or ())
    return dict(zip(pairs, pairs, strict=False))


# top-N lists derived from combos: (parent kind, child kind)
TOP_PAIRS = tuple(k.TOP_CHILD.items())
CLICK_COLUMNS = len(k.CLICK_PAIRS)  # the click columns come first in keys.PAIRS


@dataclass
class MoveContent:
    buckets: tuple[int, int, int]
    counts: dict[tuple[str, int, str, int], list[int]] = field(default_factory=dict)  # earlier layout
    combo_counts: dict[tuple[tuple[int | None, ...], str, int], list[int]] = field(default_factory=dict)
    heatmap: list[tuple[int, int, int]] = field(default_factory=list)
    viewmap: list[tuple[int, int, int]] = field(default_factory=list)  # human impressions per second
    top_clicks: dict[tuple[str, int, int], int] = field(default_factory=dict)
    top_impressions: dict[tuple[str, int, int], int] = field(default_factory=dict)

    @property
    def top(self) -> list[tuple[str, int, int, int, int]]:
        """(parent kind, parent id, child id, human clicks, human impressions)."""
        keys = set(self.top_clicks) | set(self.top_impressions)
        return [(*key, self.top_clicks.get(key, 0), self.top_impressions.get(key, 0)) for key in keys
                if self.top_clicks.get(key, 0) or self.top_impressions.get(key, 0)]

    def add_hash(self, parts: list[str], fields: dict[bytes, bytes]) -> None:
        """Add one hash (its logical key split on ':') to the content."""
        if parts[0] == "c" and len(parts) == 2:  # a combo: PostgreSQL adds it to each of its entities
            ids = k.combo_ids(parts[1])
            entities = dict(k.combo_entities(parts[1]))
            _, hour, day = self.buckets
            human = impressions = 0
            rows = self.combo_counts
            for name, value in fields.items():
                minute_raw, _, code = name.decode().partition(":")
                minute, n, index = int(minute_raw), int(value), k.PAIR_INDEX[code]
                if code[0] == "h":
                    if index < CLICK_COLUMNS:
                        human += n
                    elif code == "hi":
                        impressions += n
                for gran, bucket in (("minute", minute), ("hour", minute - minute % hour),
                                     ("day", minute - minute % day)):
                    row = rows.get((ids, gran, bucket))
                    if row is None:
                        row = rows[(ids, gran, bucket)] = [0] * len(k.PAIRS)
                    row[index] += n
            for parent_kind, child_kind in TOP_PAIRS:
                parent, child = entities.get(parent_kind), entities.get(child_kind)
                if parent is not None and child is not None:
                    key = (parent_kind, parent, child)
                    if human:
                        self.top_clicks[key] = self.top_clicks.get(key, 0) + human
                    if impressions:
                        self.top_impressions[key] = self.top_impressions.get(key, 0) + impressions
        elif parts[0] == "c":  # the per-entity layout of earlier versions (left over by an upgrade)
            self._add_entity_counts(parts[1], int(parts[2]), fields)
        elif parts[0] == "hm":
            video = int(parts[1])
            self.heatmap.extend((video, int(name), int(value)) for name, value in fields.items())
        elif parts[0] == "vm":
            video = int(parts[1])
            self.viewmap.extend((video, int(name), int(value)) for name, value in fields.items())
        elif parts[0] == "t":  # earlier versions' top-N hashes
            parent_kind, parent_id = parts[1], int(parts[2])
            for name, value in fields.items():
                key = (parent_kind, parent_id, int(name))
                self.top_clicks[key] = self.top_clicks.get(key, 0) + int(value)

    def _add_entity_counts(self, kind: str, eid: int, fields: dict[bytes, bytes]) -> None:
        _, hour, day = self.buckets
        for name, value in fields.items():
            minute_raw, _, code = name.decode().partition(":")
            minute, n, index = int(minute_raw), int(value), k.PAIR_INDEX[code]
            for gran, bucket in (("minute", minute), ("hour", minute - minute % hour),
                                 ("day", minute - minute % day)):
                row = self.counts.get((kind, eid, gran, bucket))
                if row is None:
                    row = self.counts[(kind, eid, gran, bucket)] = [0] * len(k.PAIRS)
                row[index] += n


@dataclass
class RollupReport:
    moves: int = 0
    skipped_moves: int = 0
    hashes: int = 0
    uniques: int = 0
    pruned: int = 0


Checkpoint = Callable[[str, int, Sequence[bytes]], None]
"""`checkpoint(point, shard, ids)`, called where a crash must leave the counts exact, so that a
test can kill the process right there (tests/support/count_launcher.py); production passes none.
The roll-up's points: "after_move" (a move taken from Redis, PostgreSQL not committed) and
"after_move_commit" (committed, the moved hashes not dropped yet), without ids. The count
worker's points are in consumer.py."""


class Rollup:
    """Moves one namespace's counters of every shard into PostgreSQL."""

    def __init__(self, redis: AnyRedis, pool: asyncpg.Pool, shards: int, *,
                 node: Callable[[int], Redis] | None = None,
                 buckets: tuple[int, int, int] = (60, 3600, 86400), max_keys: int = 5000,
                 ns: str = k.LIVE_NS, checkpoint: Checkpoint | None = None) -> None:
        """`node(shard)`: a client of the node that holds the shard's keys (needed on a Redis
        Cluster, `RedisTopology.for_shard`; on one Redis it is `redis` itself)."""
        if node is None:
            if not isinstance(redis, Redis):
                raise TypeError("on a Redis Cluster, Rollup needs node= (the client of a shard's node)")
            single = redis
            node = lambda _shard: single  # noqa: E731
        self.redis = redis
        self.node = node
        self.buckets = buckets
        self.pool = pool
        self.shards = shards
        self.max_keys = max_keys
        self.ns = ns
        self.checkpoint = checkpoint
        self._move = redis.register_script(MOVE_LUA)
        self._finish = redis.register_script(FINISH_LUA)
        self._take_udirty = redis.register_script(TAKE_UDIRTY_LUA)
        self._merge_hll = redis.register_script(MERGE_HLL_LUA)

    async def run_once(self, report: RollupReport | None = None, *, moves: bool = True,
                       uniques: bool = True) -> RollupReport:
        """Move every shard's counters and/or union its HyperLogLogs into PostgreSQL."""
        report = report or RollupReport()
        for shard in range(self.shards):
            if moves:
                await self.move_shard(shard, report)
            if uniques:
                await self.union_uniques(shard, report)
        return report

    async def move_shard(self, shard: int, report: RollupReport) -> None:
        """Move every dirty hash of the shard (several moves when there are many)."""
        while True:
            async with self.pool.acquire() as con:
                floor = (await repo.shard_seqs(con)).get(shard, 0)
            ns = self.ns
            seq_raw, moved = await self._move(
                keys=[k.dirty(shard, ns), k.mvkeys(shard, ns), k.mvseq(shard, ns), k.moveseq(shard, ns)],
                args=[floor, k.shard_prefix(shard, ns), self.max_keys])
            seq = int(seq_raw)
            if seq == 0:
                return
            if self.checkpoint is not None:
                self.checkpoint("after_move", shard, ())
            names = [m.decode() if isinstance(m, bytes) else str(m) for m in moved]
            contents = await call_many(self.node(shard), [pack(["HGETALL", name]) for name in names])
            content = MoveContent(self.buckets)
            for name, reply in zip(names, contents, strict=True):
                content.add_hash(k.parse_logical(name, shard, ns), _fields(reply))
            async with self.pool.acquire() as con, con.transaction():
                last = await repo.lock_shard(con, shard)
                if last >= seq:
                    report.skipped_moves += 1
                else:
                    await repo.add_combo_counts(con, [(*key, row) for key, row in content.combo_counts.items()])
                    await repo.add_counts(con, [(*key, row) for key, row in content.counts.items()])
                    await repo.add_heatmap(con, content.heatmap)
                    await repo.add_viewmap(con, content.viewmap)
                    await repo.add_top(con, content.top)
                    await repo.set_shard_seq(con, shard, seq)
                    report.moves += 1
                    report.hashes += len(names)
            if self.checkpoint is not None:
                self.checkpoint("after_move_commit", shard, ())
            await self._finish(keys=[k.mvkeys(shard, ns), k.mvseq(shard, ns)], args=[seq])

    async def union_uniques(self, shard: int, report: RollupReport) -> None:
        ns = self.ns
        proc = k.udirty(shard, ns) + ":proc"
        members = await self._take_udirty(keys=[k.udirty(shard, ns), proc])
        if not members:
            return
        wanted: dict[tuple[str, int, int, str], list[str]] = {}
        for m in members:
            name = m.decode() if isinstance(m, bytes) else str(m)
            parts = k.parse_logical(name, shard, ns)
            measure = "impression" if parts[0] == "ui" else "click"
            if len(parts) == 3:  # u or ui, combo, day: a union for each entity of the combo
                for kind, eid in k.combo_entities(parts[1]):
                    wanted.setdefault((kind, eid, int(parts[2]), measure), []).append(name)
            else:  # u, kind, id, day (earlier versions)
                wanted.setdefault((parts[1], int(parts[2]), int(parts[3]), measure), []).append(name)
        tmp = k.tmp(shard, secrets.token_hex(6), ns)
        async with self.pool.acquire() as con, con.transaction():
            existing = await repo.lock_uniques(con, wanted)
            rows = []
            items = list(wanted.items())
            for i in range(0, len(items), 500):  # pipelined: one round trip per 500 unions
                pipe = self.node(shard).pipeline(transaction=False)  # one node: scripts allowed
                for key, names in items[i:i + 500]:
                    await self._merge_hll(keys=[tmp, *names], args=[existing.get(key, b"")], client=pipe)
                for (key, _), (blob, count) in zip(items[i:i + 500], await pipe.execute(), strict=True):
                    if blob is not None:
                        rows.append((key[0], key[1], key[2], key[3], bytes(blob), int(count)))
            await repo.put_uniques(con, rows)
        report.uniques += len(wanted)
        await self.redis.delete(proc)

    async def prune(self, retention: dict[str, int], now: datetime | None = None) -> int:
        """Delete history older than each granularity's retention (0 = keep forever)."""
        now = now or datetime.now(UTC)
        removed = 0
        async with self.pool.acquire() as con:
            for gran, seconds in retention.items():
                if seconds > 0:
                    removed += await repo.prune(con, gran, now - timedelta(seconds=seconds))
        return removed
