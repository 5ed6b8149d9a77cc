"""The click streams: consumer groups, lag, and trimming that never overtakes a group.

A stream entry may be trimmed only when (a) it is older than the retention and (b) every consumer
group on the stream has acknowledged it: below the group's oldest pending entry and not after its
last delivered one. A group whose oldest unacknowledged entry is older than the maximum retention
is reported as overdue (metrics, `shoplink count --status`) and the stream keeps waiting for it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from redis.exceptions import ResponseError

from shoplink.analytics import keys as k
from shoplink.redis import AnyRedis

StreamId = tuple[int, int]


def parse_id(raw: bytes | str) -> StreamId:
    text = raw.decode() if isinstance(raw, bytes) else raw
    ms, _, seq = text.partition("-")
    return (int(ms), int(seq or 0))


def format_id(sid: StreamId) -> str:
    return f"{sid[0]}-{sid[1]}"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def ensure_group(redis: AnyRedis, stream: str, group: str = k.GROUP, start: str = "0") -> bool:
    """Create the group (and the stream) when missing; True when it was created."""
    try:
        await redis.xgroup_create(stream, group, id=start, mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" in str(exc):
            return False
        raise
    return True


@dataclass
class GroupLag:
    group: str
    consumers: int
    pending: int
    undelivered: int  # entries not yet delivered to the group (Redis' "lag", counted when it has none)
    last_delivered: str
    oldest_unacked_id: str | None
    oldest_unacked_age_s: float | None
    overdue: bool = False

    @property
    def unacked(self) -> int:
        return self.undelivered + self.pending


@dataclass
class ShardState:
    shard: int
    stream: str
    length: int
    entries_added: int
    first_id: str | None
    last_id: str | None
    dead_letters: int
    groups: list[GroupLag] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        for g, lag in zip(out["groups"], self.groups, strict=True):
            g["unacked"] = lag.unacked
        return out


async def _first_after(redis: AnyRedis, stream: str, after: str) -> str | None:
    rows = await redis.xrange(stream, min=f"({after}" if after != "0-0" else "-", count=1)
    return _text(rows[0][0]) if rows else None


COUNT_PAGE = 1000


async def _count_after(redis: AnyRedis, stream: str, after: str, first_id: str | None,
                       last_id: str | None, length: int) -> int:
    """Entries of the stream with an id above `after`: what XINFO GROUPS calls the group's lag.

    Redis answers that lag with nil when it cannot tell from its counters alone (a group that has
    not read yet on a stream with deleted entries, a deletion after the group's position); the
    stream itself then says: everything when the group is before the first entry, nothing when
    it is at or after the last, otherwise the entries counted page by page."""
    if first_id is None or last_id is None or parse_id(after) >= parse_id(last_id):
        return 0
    if parse_id(after) < parse_id(first_id):
        return length
    counted, cursor = 0, after
    while True:
        rows = await redis.xrange(stream, min=f"({cursor}", count=COUNT_PAGE) or []
        counted += len(rows)
        if len(rows) < COUNT_PAGE:
            return counted
        cursor = _text(rows[-1][0])


async def shard_state(redis: AnyRedis, shard: int, *, max_retention_s: int,
                      now_ms: int | None = None, stream: str | None = None,
                      dead: str | None = None) -> ShardState:
    """The state of shard n's click stream (or of `stream`, with its dead-letter stream `dead`)."""
    stream = k.stream(shard) if stream is None else stream
    dead = k.dead_stream(shard) if dead is None else dead
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    try:
        info = await redis.xinfo_stream(stream)
    except ResponseError:  # no such stream yet
        return ShardState(shard, stream, 0, 0, None, None, await redis.xlen(dead))
    first = info.get("first-entry")
    last = info.get("last-entry")
    state = ShardState(
        shard=shard, stream=stream, length=int(info["length"]),
        entries_added=int(info.get("entries-added") or 0),
        first_id=_text(first[0]) if first else None, last_id=_text(last[0]) if last else None,
        dead_letters=await redis.xlen(dead))
    for g in await redis.xinfo_groups(stream):
        name = _text(g["name"])
        pending = int(g["pending"])
        last_delivered = _text(g["last-delivered-id"])
        oldest: str | None = None
        if pending:
            summary = await redis.xpending(stream, name)
            oldest = _text(summary["min"])
        lag = g.get("lag")
        undelivered = int(lag) if lag is not None else await _count_after(
            redis, stream, last_delivered, state.first_id, state.last_id, state.length)
        if oldest is None and undelivered > 0:
            oldest = await _first_after(redis, stream, last_delivered)
        age = None if oldest is None else max(0.0, (now_ms - parse_id(oldest)[0]) / 1000)
        state.groups.append(GroupLag(
            group=name, consumers=int(g["consumers"]), pending=pending, undelivered=undelivered,
            last_delivered=last_delivered, oldest_unacked_id=oldest, oldest_unacked_age_s=age,
            overdue=age is not None and age > max_retention_s))
    return state


def _acked_below(state_group: GroupLag) -> StreamId:
    """Every entry with an id strictly below this has been acknowledged by the group."""
    if state_group.oldest_unacked_id is not None:
        return parse_id(state_group.oldest_unacked_id)
    ms, seq = parse_id(state_group.last_delivered)
    return (ms, seq + 1)


async def trim_shard(redis: AnyRedis, shard: int, *, retention_s: int, max_retention_s: int,
                     now_ms: int | None = None, stream: str | None = None,
                     dead: str | None = None) -> tuple[int, ShardState]:
    """Trim entries older than the retention that every group acknowledged; returns (removed, state).
    The click stream of the shard, or `stream` (with its dead-letter stream `dead`)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    dead = k.dead_stream(shard) if dead is None else dead
    state = await shard_state(redis, shard, max_retention_s=max_retention_s, now_ms=now_ms,
                              stream=stream, dead=dead)
    removed = 0
    cutoff: StreamId = (now_ms - retention_s * 1000, 0)
    if state.groups and state.length:
        threshold = min([cutoff, *(_acked_below(g) for g in state.groups)])
        if threshold > (0, 0):
            removed = int(await redis.xtrim(state.stream, minid=format_id(threshold), approximate=False))
    # The dead-letter stream has no consumer group of ours: retention only.
    await redis.xtrim(dead, minid=format_id(cutoff), approximate=False)
    return removed, state
