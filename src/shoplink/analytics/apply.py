"""Applying a batch of click events (or of the player's event batches) to the Redis counters,
effectively once.

A batch (events of one shard) is aggregated in Python into a compact plan: HINCRBY increments
per counter hash, PFADD viewers per HyperLogLog, and the event ids grouped by dedup set. One
EVALSHA of `APPLY_LUA` then runs atomically on the shard's slot:

1. SMISMEMBER every event id against the shard's dedup sets (`seen:<hour of the event>`);
2. if any id was already applied, it changes NOTHING and returns those ids; the caller drops
   them, rebuilds the plan from the remaining events and calls again (rare: a redelivery after a
   crash, or a duplicate written by a spool replay under a new stream id);
3. otherwise it records every id (SADD, with the dedup retention as TTL) and applies all the
   increments, in the same atomic step.

So "this event was counted" and "its increments" can never be separated by a crash, and an id
is counted at most once per dedup retention. Choosing "all or nothing, then retry without the
duplicates" keeps the common path (no duplicates) to one round trip with aggregated
increments, and needs no per-event increments inside Lua.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate, chain, compress
from operator import itemgetter
from typing import Any

import orjson
from redis.asyncio import Redis

from shoplink.analytics import keys as k
from shoplink.analytics.events import Row
from shoplink.analytics.funnel_events import MEASURE, Batch
from shoplink.redis import RedisTopology, topology_of
from shoplink.resp import Script, pack

APPLY_LUA = r"""
-- KEYS: d dedup sets, h hashes, u HyperLogLogs, then dirty, udirty, applied
-- ARGV: dedup ttl, uniques ttl, events, body: JSON [[ids per dedup set...], [[fields], [deltas]]
--       per hash...], [[viewers] per HyperLogLog...]] in the order of KEYS.
-- The body is one argument decoded by cjson (C) instead of tens of thousands of ARGV entries.
local body = cjson.decode(ARGV[4])
local dedup, hincr, pfadd = body[1], body[2], body[3]
local d, h, u = #dedup, #hincr, #pfadd
local seen = {}
for i = 1, d do
  local ids = dedup[i]
  local n = #ids
  local s = 1
  while s <= n do
    local e = math.min(s + 4999, n)
    local r = redis.call('SMISMEMBER', KEYS[i], unpack(ids, s, e))
    for t = 1, #r do
      if r[t] == 1 then seen[#seen + 1] = ids[s + t - 1] end
    end
    s = e + 1
  end
end
if #seen > 0 then return seen end
for i = 1, d do
  local ids = dedup[i]
  local n = #ids
  local s = 1
  while s <= n do
    local e = math.min(s + 4999, n)
    redis.call('SADD', KEYS[i], unpack(ids, s, e))
    s = e + 1
  end
  redis.call('EXPIRE', KEYS[i], ARGV[1])
end
-- Increments: HMGET the fields of a hash, add in Lua, one HSET (two calls per hash instead of
-- one HINCRBY per field; the script is atomic, so this read-modify-write is safe); a hash that
-- gets one field gets one HINCRBY.
for j = 1, h do
  local key = KEYS[d + j]
  local names, deltas = hincr[j][1], hincr[j][2]
  local c = #names
  local s = 1
  if c == 1 then
    redis.call('HINCRBY', key, names[1], deltas[1])
    s = 2
  end
  while s <= c do
    local e = math.min(s + 3999, c)
    local cur = redis.call('HMGET', key, unpack(names, s, e))
    local kv = {}
    for t = 1, e - s + 1 do
      kv[2 * t - 1] = names[s + t - 1]
      kv[2 * t] = (tonumber(cur[t]) or 0) + deltas[s + t - 1]
    end
    redis.call('HSET', key, unpack(kv))
    s = e + 1
  end
end
local s = d + 1
while s <= d + h do
  local e = math.min(s + 4999, d + h)
  redis.call('SADD', KEYS[d + h + u + 1], unpack(KEYS, s, e))
  s = e + 1
end
for j = 1, u do
  local key = KEYS[d + h + j]
  local viewers = pfadd[j]
  local n = #viewers
  local v = 1
  while v <= n do
    local e = math.min(v + 4999, n)
    redis.call('PFADD', key, unpack(viewers, v, e))
    v = e + 1
  end
  redis.call('EXPIRE', key, ARGV[2])
end
s = d + h + 1
while s <= d + h + u do
  local e = math.min(s + 4999, d + h + u)
  redis.call('SADD', KEYS[d + h + u + 2], unpack(KEYS, s, e))
  s = e + 1
end
redis.call('INCRBY', KEYS[d + h + u + 3], ARGV[3])
return {}
"""

_CLS = k.CLASS_CODE
_OUT = k.OUTCOME_CODE


@dataclass
class Plan:
    """What one atomic apply does on one shard."""

    shard: int
    events: int
    dedup: dict[str, list[str]] = field(default_factory=dict)
    hincr: dict[str, dict[str, int]] = field(default_factory=dict)
    pfadd: dict[str, set[str]] = field(default_factory=dict)

    def size(self) -> int:
        """Distinct increments: hash fields, HyperLogLog elements and ids (what a call's work grows with)."""
        return (sum([len(f) for f in self.hincr.values()]) + sum([len(v) for v in self.pfadd.values()])
                + sum([len(i) for i in self.dedup.values()]))

    def keys(self, ns: str) -> list[str]:
        return [*self.dedup, *self.hincr, *self.pfadd,
                k.dirty(self.shard, ns), k.udirty(self.shard, ns), k.applied(self.shard, ns)]

    def body(self) -> bytes:
        """The JSON body argument of APPLY_LUA (one argument, decoded by cjson in the script)."""
        return _dumps([list(self.dedup.values()), [(list(f), list(f.values())) for f in self.hincr.values()],
                       [list(v) for v in self.pfadd.values()]])

    def encode(self, ns: str, dedup_ttl_s: int, uniques_ttl_s: int) -> tuple[list[str], list[Any]]:
        """KEYS and ARGV of APPLY_LUA (see `packed` for the fast form of the same command)."""
        return self.keys(ns), [dedup_ttl_s, uniques_ttl_s, self.events, self.body()]

    def packed(self, sha: str, ns: str, dedup_ttl_s: int, uniques_ttl_s: int) -> bytes:
        """The RESP request `EVALSHA sha ... KEYS ... ARGV` of `encode`, packed in one pass."""
        keys, args = self.encode(ns, dedup_ttl_s, uniques_ttl_s)
        return pack(["EVALSHA", sha, len(keys), *keys, *args])


_dumps = orjson.dumps
_NO_ENTITY = (None,) * len(k.ENTITY_KINDS)
_COMBO_IDS: dict[tuple[Any, ...], str] = {_NO_ENTITY: ""}
# a player event's (type, quartile, 7 ids), 7 ids, type, video, playback second (funnel_events.py)
_HEAD9, _ENTS, _TYPE = itemgetter(slice(0, 9)), itemgetter(slice(2, 9)), itemgetter(0)
_VIDEO, _PLAYBACK = itemgetter(3), itemgetter(9)
_IS_IMPRESSION = "impression".__eq__


def _combo_id(ents: tuple[Any, ...]) -> str:
    """keys.combo_id, memoised across plans (a worker sees the same combos read after read)."""
    cid = _COMBO_IDS.get(ents)
    if cid is None:
        if len(_COMBO_IDS) > 500_000:
            _COMBO_IDS.clear()
            _COMBO_IDS[_NO_ENTITY] = ""
        cid = _COMBO_IDS[ents] = k.combo_id(ents)
    return cid


def build_plan(shard: int, events: Sequence[Row], buckets: tuple[int, int, int],
               heatmap_bucket_s: int = 1, ns: str = k.LIVE_NS) -> Plan:
    """Aggregate the events (already unique by event id) into increments.

    Everything is counted per combo (the event's 7 entity ids, keys.py): one hash field per
    combo, minute and class/outcome, one HyperLogLog per combo and day; per-entity totals,
    top-N and unique viewers are derived from the combos by the roll-up and the reader. Only
    the video heatmap is kept per video. Redis counts per minute bucket only: hour and day
    buckets are sums of minutes. Per-event work is done by comprehensions and Counter (C loops);
    Python-level work is per distinct (combo, field).
    """
    m_ms, d_ms = buckets[0] * 1000, buckets[2] * 1000
    prefix = k.shard_prefix(shard, ns)
    plan = Plan(shard, len(events))
    hincr = plan.hincr
    combo = _combo_id
    labels: dict[tuple[int, str, str], str] = {}
    for (ents, minute, ua, outcome), n in Counter(
            [(e[4:11], e[1] - e[1] % m_ms, e[2], e[3]) for e in events]).items():
        cid = combo(ents)
        if not cid:
            continue  # an event of no entity (unknown code): counted in `applied` only
        label = labels.get((minute, ua, outcome))
        if label is None:
            label = labels[(minute, ua, outcome)] = f"{minute // 1000}:{_CLS[ua]}{_OUT[outcome]}"
        fields = hincr.get(prefix + "c:" + cid)
        if fields is None:
            hincr[prefix + "c:" + cid] = {label: n}
        else:
            fields[label] = n
    humans = [e for e in events if e[2] == "human"]
    heat: dict[str, dict[str, int]] = defaultdict(dict)
    for (video, second), n in Counter([
            (e[5], int(e[11] // heatmap_bucket_s) * heatmap_bucket_s)
            for e in humans if e[5] is not None and e[11] is not None]).items():
        heat[f"{prefix}hm:{video}"][str(second)] = n
    hincr.update(heat)
    # unique human viewers per combo and day
    by_day: defaultdict[tuple[Any, int], set[str]] = defaultdict(set)
    for ents, day, viewer in {(e[4:11], e[1] - e[1] % d_ms, e[12]) for e in humans}:
        by_day[(ents, day)].add(viewer)
    pfadd = plan.pfadd
    for (ents, day), viewers in by_day.items():
        cid = combo(ents)
        if cid:
            pfadd[f"{prefix}u:{cid}:{day // 1000}"] = viewers
    hours = {e[1] // 3_600_000 for e in events}
    if len(hours) == 1:
        plan.dedup = {f"{prefix}seen:{hours.pop()}": [e[0] for e in events]}
    else:
        for e in events:
            plan.dedup.setdefault(f"{prefix}seen:{e[1] // 3_600_000}", []).append(e[0])
    return plan


def build_funnel_plan(shard: int, batches: Sequence[Batch], buckets: tuple[int, int, int],
                      heatmap_bucket_s: int = 1, ns: str = k.LIVE_NS) -> Plan:
    """The same for batches of player events (funnel_events.py), unique by batch id.

    Every event of a batch is counted in the batch's minute, on its combo's hash, under the field
    `<minute>:<class><measure code>`; human impressions also go to the video's view map
    (`vm:<video>`, by playback second) and their viewers to the combo's impression HyperLogLog
    (`ui:<combo>:<day>`). The dedup sets record the batch ids. One comprehension and one Counter
    pass over the events (C loops); Python-level work is per distinct (combo, field)."""
    m_ms, d_ms = buckets[0] * 1000, buckets[2] * 1000
    prefix = k.shard_prefix(shard, ns)
    plan = Plan(shard, sum([len(b[4]) for b in batches]))
    hincr = plan.hincr
    hashes: dict[tuple[Any, ...], str] = {_NO_ENTITY: ""}  # entity ids -> the combo's hash key
    # the batches' event lists by (minute, class): within a group every event is counted by its
    # (type, quartile, 7 ids) alone, in one C-level Counter pass
    groups: defaultdict[tuple[int, str], list[list[Any]]] = defaultdict(list)
    for b in batches:
        groups[(b[1] - b[1] % m_ms, b[2])].append(b[4])
    for (minute, ua), lists in groups.items():
        stamp, cls = f"{minute // 1000}:", _CLS[ua]
        labels: dict[tuple[str, Any], str] = {}
        for key9, n in Counter(map(_HEAD9, chain.from_iterable(lists))).items():
            ents = key9[2:]
            key = hashes.get(ents)
            if key is None:
                cid = _combo_id(ents)
                key = hashes[ents] = prefix + "c:" + cid if cid else ""
            if not key:
                continue
            label = labels.get(key9[:2])
            if label is None:
                label = labels[key9[:2]] = stamp + cls + _OUT[MEASURE[key9[:2]]]
            fields = hincr.get(key)
            if fields is None:
                hincr[key] = {label: n}
            else:
                fields[label] = n
    # human impressions: the view map (video, playback second) and the viewers per combo and day
    humans = [b for b in batches if b[2] == "human"]
    shown = [list(compress(b[4], map(_IS_IMPRESSION, map(_TYPE, b[4])))) for b in humans]
    imps = list(chain.from_iterable(shown))
    videos, playbacks = list(map(_VIDEO, imps)), list(map(_PLAYBACK, imps))
    if heatmap_bucket_s == 1 and None not in videos and None not in playbacks:
        at = Counter(zip(videos, map(int, playbacks), strict=True))
    else:
        at = Counter([(v, int(p // heatmap_bucket_s) * heatmap_bucket_s)
                      for v, p in zip(videos, playbacks, strict=True) if v is not None and p is not None])
    views: dict[str, dict[str, int]] = defaultdict(dict)
    for (video, second), n in at.items():
        views[f"{prefix}vm:{video}"][str(second)] = n
    hincr.update(views)
    by_day: defaultdict[tuple[Any, int], set[str]] = defaultdict(set)
    for b, events in zip(humans, shown, strict=True):
        day, viewer = b[1] - b[1] % d_ms, b[3]
        for ents in set(map(_ENTS, events)):
            by_day[(ents, day)].add(viewer)
    for (ents, day), viewers in by_day.items():
        if ents != _NO_ENTITY:
            plan.pfadd[f"{prefix}ui:{_combo_id(ents)}:{day // 1000}"] = viewers
    hours = {b[1] // 3_600_000 for b in batches}
    if len(hours) == 1:
        plan.dedup = {f"{prefix}seen:{hours.pop()}": [b[0] for b in batches]}
    else:
        for b in batches:
            plan.dedup.setdefault(f"{prefix}seen:{b[1] // 3_600_000}", []).append(b[0])
    return plan


def unique_by_id(events: Sequence[Row]) -> list[Row]:
    """Drop repeated event ids inside one batch (the first one wins)."""
    ids = {e[0] for e in events}
    if len(ids) == len(events):
        return list(events)
    out: dict[str, Row] = {}
    for ev in events:
        out.setdefault(ev[0], ev)
    return list(out.values())


@dataclass
class ApplyResult:
    applied: int = 0
    duplicates: int = 0


class Applier:
    """Applies events of one shard with `APPLY_LUA`; safe to call again with the same events.

    Each shard's calls go to the Redis node that owns the shard's slot (`RedisTopology`)."""

    def __init__(self, redis: Redis | RedisTopology, *, buckets: tuple[int, int, int],
                 dedup_ttl_s: int, uniques_ttl_s: int, heatmap_bucket_s: int = 1,
                 ns: str = k.LIVE_NS) -> None:
        self._topology = topology_of(redis)
        self._script = Script(APPLY_LUA)
        self.buckets = buckets
        self.dedup_ttl_s = dedup_ttl_s
        self.uniques_ttl_s = uniques_ttl_s
        self.heatmap_bucket_s = heatmap_bucket_s
        self.ns = ns
        # distinct increments per event of the last plan, by family (funnel?); the start is an
        # upper bound (an event adds at most a field, a heat/view-map field, a viewer and an id)
        self._per_event = {False: 4.0, True: 4.0}

    def plan(self, shard: int, events: Sequence[Row], *, funnel: bool = False) -> Plan:
        build = build_funnel_plan if funnel else build_plan
        return build(shard, events, self.buckets, self.heatmap_bucket_s, self.ns)

    async def apply(self, shard: int, events: Sequence[Row], *, funnel: bool = False,
                    plan: Plan | None = None) -> ApplyResult:
        """Apply click events, or (`funnel`) batches of player events, in ONE atomic call (plus a
        retry without the duplicates it reports); the result counts events (a batch counts as
        many as it holds). `plan`, when given, is `self.plan` of `unique_by_id(events)`."""
        size = _batch_events if funnel else len
        pending = unique_by_id(events)
        result = ApplyResult(duplicates=size(events) - size(pending))
        while pending:
            if plan is None:
                plan = self.plan(shard, pending, funnel=funnel)
            request = plan.packed(self._script.sha, self.ns, self.dedup_ttl_s, self.uniques_ttl_s)
            seen = await self._script.packed(self._topology.for_shard(shard), request)
            if not seen:
                result.applied += plan.events
                break
            plan = None
            already = {s.decode() if isinstance(s, bytes) else str(s) for s in seen}
            kept = [ev for ev in pending if ev[0] not in already]
            result.duplicates += size(pending) - size(kept)
            pending = kept
        return result

    async def apply_bounded(self, shard: int, rows: Sequence[Row], *, funnel: bool, limit: int,
                            after_first: Callable[[], None] | None = None) -> ApplyResult:
        """Apply `rows` in consecutive atomic calls of at most `limit` distinct increments each
        (`Plan.size`: hash fields, HyperLogLog elements, ids), so that no Lua call runs long
        however the events collapse, and calls are as big as that allows (Redis' cost is mostly
        per key touched, so bigger calls cost less per event). Each call is a whole number of
        rows (a batch is never split): exactly once holds per call as in `apply`.

        How many rows fit is estimated from the previous call's increments per event, aiming at
        80 % of the limit (distinct increments grow less than linearly with the events); a plan
        that still exceeds the limit is rebuilt from half its rows. `after_first` runs after the
        first call when more follow (the worker's mid_batch checkpoint)."""
        weights = [len(b[4]) for b in rows] if funnel else [1] * len(rows)
        ends = list(accumulate(weights))  # events in rows[:i + 1]
        result = ApplyResult()
        start = 0
        while start < len(rows):
            before = ends[start - 1] if start else 0
            budget = int(limit * 0.8 / self._per_event[funnel])
            take = max(1, bisect_right(ends, before + budget) - start)
            while True:
                chunk = rows[start:start + take]
                unique = unique_by_id(chunk)
                plan = self.plan(shard, unique, funnel=funnel)
                if plan.size() <= limit or take == 1:
                    break
                take //= 2
            if plan.events:
                self._per_event[funnel] = max(0.05, plan.size() / plan.events)
            part = await self.apply(shard, unique, funnel=funnel, plan=plan)
            result.applied += part.applied
            result.duplicates += part.duplicates + (ends[start + take - 1] - before) - _events_of(unique, funnel)
            start += take
            if after_first is not None and start < len(rows):
                after_first()
                after_first = None
        return result


def _events_of(rows: Sequence[Row], funnel: bool) -> int:
    return _batch_events(rows) if funnel else len(rows)


def _batch_events(batches: Sequence[Batch]) -> int:
    return sum([len(b[4]) for b in batches])
