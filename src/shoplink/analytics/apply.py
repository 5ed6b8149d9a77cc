"""Applying a batch of click events to the Redis counters, effectively once.

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

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from shoplink.analytics import keys as k
from shoplink.analytics.events import Event

APPLY_LUA = r"""
local d = tonumber(ARGV[1])
local h = tonumber(ARGV[2])
local u = tonumber(ARGV[3])
local dttl = ARGV[4]
local uttl = ARGV[5]
local nev = ARGV[6]
local pos = 7
local starts, ends = {}, {}
local seen = {}
for i = 1, d do
  local c = tonumber(ARGV[pos])
  starts[i] = pos + 1
  ends[i] = pos + c
  pos = pos + 1 + c
  local s = starts[i]
  while s <= ends[i] do
    local e = math.min(s + 999, ends[i])
    local r = redis.call('SMISMEMBER', KEYS[i], unpack(ARGV, s, e))
    for t = 1, #r do
      if r[t] == 1 then seen[#seen + 1] = ARGV[s + t - 1] end
    end
    s = e + 1
  end
end
if #seen > 0 then return seen end
for i = 1, d do
  local s = starts[i]
  while s <= ends[i] do
    local e = math.min(s + 999, ends[i])
    redis.call('SADD', KEYS[i], unpack(ARGV, s, e))
    s = e + 1
  end
  redis.call('EXPIRE', KEYS[i], dttl)
end
local dirty = KEYS[d + h + u + 1]
local udirty = KEYS[d + h + u + 2]
for j = 1, h do
  local key = KEYS[d + j]
  local c = tonumber(ARGV[pos])
  pos = pos + 1
  for t = 1, c do
    redis.call('HINCRBY', key, ARGV[pos], ARGV[pos + 1])
    pos = pos + 2
  end
end
local s = d + 1
while s <= d + h do
  local e = math.min(s + 999, d + h)
  redis.call('SADD', dirty, unpack(KEYS, s, e))
  s = e + 1
end
for j = 1, u do
  local key = KEYS[d + h + j]
  local c = tonumber(ARGV[pos])
  local s2 = pos + 1
  pos = pos + 1 + c
  while s2 < pos do
    local e = math.min(s2 + 999, pos - 1)
    redis.call('PFADD', key, unpack(ARGV, s2, e))
    s2 = e + 1
  end
  redis.call('EXPIRE', key, uttl)
end
s = d + h + 1
while s <= d + h + u do
  local e = math.min(s + 999, d + h + u)
  redis.call('SADD', udirty, unpack(KEYS, s, e))
  s = e + 1
end
redis.call('INCRBY', KEYS[d + h + u + 3], nev)
return {}
"""

_KINDS = k.ENTITY_KINDS  # order of Plan entity tuples: anchor, video, live, product, shop, creator, plan


@dataclass
class Plan:
    """What one atomic apply does on one shard."""

    shard: int
    events: int
    dedup: dict[str, list[str]] = field(default_factory=dict)
    hincr: dict[str, dict[str, int]] = field(default_factory=dict)
    pfadd: dict[str, set[str]] = field(default_factory=dict)

    def encode(self, ns: str, dedup_ttl_s: int, uniques_ttl_s: int) -> tuple[list[str], list[Any]]:
        keys: list[str] = [*self.dedup, *self.hincr, *self.pfadd,
                           k.dirty(self.shard, ns), k.udirty(self.shard, ns), k.applied(self.shard, ns)]
        args: list[Any] = [len(self.dedup), len(self.hincr), len(self.pfadd), dedup_ttl_s,
                           uniques_ttl_s, self.events]
        for ids in self.dedup.values():
            args.append(len(ids))
            args.extend(ids)
        for fields in self.hincr.values():
            args.append(len(fields))
            for name, delta in fields.items():
                args.append(name)
                args.append(delta)
        for viewers in self.pfadd.values():
            args.append(len(viewers))
            args.extend(viewers)
        return keys, args


def build_plan(shard: int, events: Sequence[Event], buckets: tuple[int, int, int],
               heatmap_bucket_s: int = 1, ns: str = k.LIVE_NS) -> Plan:
    """Aggregate the events (already unique by event id) into increments."""
    m_size, h_size, d_size = buckets
    agg: dict[tuple[tuple[int | None, ...], int, str], int] = {}
    views: dict[tuple[tuple[int | None, ...], int], set[str]] = {}
    heat: dict[tuple[int, int], int] = {}
    dedup: dict[int, list[str]] = {}
    for ev in events:
        ts_s = ev.ts_ms // 1000
        minute = ts_s - ts_s % m_size
        ents: tuple[int | None, ...] = (ev.anchor, ev.video, ev.live, ev.product, ev.shop, ev.creator,
                                        ev.plan)
        key = (ents, minute, ev.cls + ev.out)
        agg[key] = agg.get(key, 0) + 1
        hour = ts_s // 3600
        ids = dedup.get(hour)
        if ids is None:
            dedup[hour] = ids = []
        ids.append(ev.event_id)
        if ev.cls == "h":
            vkey = (ents, ts_s - ts_s % d_size)
            viewers = views.get(vkey)
            if viewers is None:
                views[vkey] = viewers = set()
            viewers.add(ev.viewer)
            if ev.video is not None and ev.playback_s is not None:
                second = int(ev.playback_s // heatmap_bucket_s) * heatmap_bucket_s
                hkey = (ev.video, second)
                heat[hkey] = heat.get(hkey, 0) + 1

    prefix = k.shard_prefix(shard, ns)
    plan = Plan(shard, len(events))
    plan.dedup = {f"{prefix}seen:{hour}": ids for hour, ids in dedup.items()}
    hincr = plan.hincr
    for (ents, minute, code), n in agg.items():
        buckets_by_gran = (("m", minute), ("h", minute - minute % h_size), ("d", minute - minute % d_size))
        for kind, eid in zip(_KINDS, ents, strict=True):
            if eid is None:
                continue
            base = f"{prefix}c:{kind}:{eid}:"
            for gcode, bucket in buckets_by_gran:
                fields = hincr.get(base + gcode)
                if fields is None:
                    hincr[base + gcode] = fields = {}
                name = f"{bucket}:{code}"
                fields[name] = fields.get(name, 0) + n
        if code[0] == "h":
            anchor, video, live, product, shop, creator, _ = ents
            for parent_kind, parent, child in (("video", video, anchor), ("live", live, anchor),
                                               ("shop", shop, product), ("creator", creator, product)):
                if parent is None or child is None:
                    continue
                fields = hincr.get(f"{prefix}t:{parent_kind}:{parent}")
                if fields is None:
                    hincr[f"{prefix}t:{parent_kind}:{parent}"] = fields = {}
                name = str(child)
                fields[name] = fields.get(name, 0) + n
    for (video, second), n in heat.items():
        fields = hincr.get(f"{prefix}hm:{video}")
        if fields is None:
            hincr[f"{prefix}hm:{video}"] = fields = {}
        fields[str(second)] = fields.get(str(second), 0) + n
    pfadd = plan.pfadd
    for (ents, day), viewers in views.items():
        for kind, eid in zip(_KINDS, ents, strict=True):
            if eid is None:
                continue
            name = f"{prefix}u:{kind}:{eid}:{day}"
            existing = pfadd.get(name)
            if existing is None:
                pfadd[name] = set(viewers)
            else:
                existing |= viewers
    return plan


def unique_by_id(events: Sequence[Event]) -> list[Event]:
    """Drop repeated event ids inside one batch (the first one wins)."""
    out: dict[str, Event] = {}
    for ev in events:
        if ev.event_id not in out:
            out[ev.event_id] = ev
    return list(out.values())


@dataclass
class ApplyResult:
    applied: int = 0
    duplicates: int = 0


class Applier:
    """Applies events of one shard with `APPLY_LUA`; safe to call again with the same events."""

    def __init__(self, redis: Redis, *, buckets: tuple[int, int, int], dedup_ttl_s: int,
                 uniques_ttl_s: int, heatmap_bucket_s: int = 1, ns: str = k.LIVE_NS) -> None:
        self._script = redis.register_script(APPLY_LUA)
        self.buckets = buckets
        self.dedup_ttl_s = dedup_ttl_s
        self.uniques_ttl_s = uniques_ttl_s
        self.heatmap_bucket_s = heatmap_bucket_s
        self.ns = ns

    async def apply(self, shard: int, events: Sequence[Event]) -> ApplyResult:
        pending = unique_by_id(events)
        result = ApplyResult(duplicates=len(events) - len(pending))
        while pending:
            plan = build_plan(shard, pending, self.buckets, self.heatmap_bucket_s, self.ns)
            keys, args = plan.encode(self.ns, self.dedup_ttl_s, self.uniques_ttl_s)
            seen = await self._script(keys=keys, args=args)
            if not seen:
                result.applied += len(pending)
                break
            already = {s.decode() if isinstance(s, bytes) else str(s) for s in seen}
            result.duplicates += len(already)
            pending = [ev for ev in pending if ev.event_id not in already]
        return result
