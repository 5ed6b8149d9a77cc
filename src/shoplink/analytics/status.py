"""The operational view: per shard of each stream family (the clicks, `shoplink:clicks:{n}`, and
the player's events, `shoplink:events:{n}`), stream length, consumer-group lag (entries not yet
acknowledged, and the age of the oldest), pending entries, dead letters, entries per second and
the roll-up position. Used by `shoplink count --status` and by the /metrics collector."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import asyncpg

from shoplink.analytics import keys as k
from shoplink.analytics import repository as repo
from shoplink.analytics.streams import ShardState, shard_state
from shoplink.config import Settings
from shoplink.metrics import Registry
from shoplink.redis import AnyRedis


class StreamFamily(NamedTuple):
    name: str  # the key of its section in the report
    stream: Callable[[int], str]
    dead: Callable[[int], str]
    metric: str  # the prefix of its metrics
    what: str  # its entries, in the metrics' help


FAMILIES = (
    StreamFamily("shards", k.stream, k.dead_stream, "shoplink_click", "click"),
    StreamFamily("event_shards", k.event_stream, k.event_dead_stream, "shoplink_player_event",
                 "player-event batch"),
)


async def _states(redis: AnyRedis, settings: Settings, family: StreamFamily) -> list[ShardState]:
    return [await shard_state(redis, shard, max_retention_s=settings.stream_max_retention_s,
                              stream=family.stream(shard), dead=family.dead(shard))
            for shard in range(settings.click_shards)]


async def _sample(redis: AnyRedis, settings: Settings) -> tuple[list[list[ShardState]], list[int]]:
    states = [await _states(redis, settings, family) for family in FAMILIES]
    pipe = redis.pipeline(transaction=False)
    for shard in range(settings.click_shards):
        pipe.get(k.applied(shard))
    applied = [int(v or 0) for v in await pipe.execute()]
    return states, applied


async def status_report(redis: AnyRedis, pool: asyncpg.Pool | None, settings: Settings,
                        interval_s: float = 1.0) -> dict[str, Any]:
    """A JSON document; rates are measured over `interval_s` (0: no rates). `shards`: the click
    streams, with the events applied per shard (clicks and player events, which share the
    counters of their shard) and the roll-up position; `event_shards`: the player-event streams."""
    t0 = time.monotonic()
    states, applied = await _sample(redis, settings)
    earlier: tuple[list[list[ShardState]], list[int]] | None = None
    dt = 0.0
    if interval_s > 0:
        await asyncio.sleep(interval_s)
        earlier = (states, applied)
        states, applied = await _sample(redis, settings)
        dt = time.monotonic() - t0
    rollup: dict[int, int] = {}
    if pool is not None:
        async with pool.acquire() as con:
            rollup = await repo.shard_seqs(con)
    out: dict[str, Any] = {}
    for f, family in enumerate(FAMILIES):
        shards = []
        for i, state in enumerate(states[f]):
            doc = state.to_json()
            if earlier is not None:
                doc["events_per_s"] = round((state.entries_added - earlier[0][f][i].entries_added) / dt, 1)
            if family is FAMILIES[0]:
                doc["applied_total"] = applied[i]
                doc["rollup_last_seq"] = rollup.get(state.shard, 0)
                if earlier is not None:
                    doc["applied_per_s"] = round((applied[i] - earlier[1][i]) / dt, 1)
            shards.append(doc)
        out[family.name] = shards
    out["overdue_groups"] = [
        {"shard": s.shard, "stream": s.stream, "group": g.group, "oldest_unacked_age_s": g.oldest_unacked_age_s}
        for family_states in states for s in family_states for g in s.groups if g.overdue]
    out["retention_s"] = settings.stream_retention_s
    out["max_retention_s"] = settings.stream_max_retention_s
    return out


def register_metrics(registry: Registry, redis: AnyRedis, settings: Settings) -> None:
    """Add a collector that reads the streams' state at every scrape of /metrics."""
    applied = registry.counter("shoplink_click_applied_total",
                               "Events (clicks and player events) counted by the counters group "
                               "(rates: rate() in Prometheus).")
    gauges = [_family_metrics(registry, family) for family in FAMILIES]

    async def collect() -> None:
        states, applied_counts = await _sample(redis, settings)
        for shard, applied_n in enumerate(applied_counts):
            applied.set(applied_n, shard=str(shard))
        for family_gauges, family_states in zip(gauges, states, strict=True):
            family_gauges(family_states)

    registry.register_collector(collect)


def _family_metrics(registry: Registry, family: StreamFamily) -> Callable[[list[ShardState]], None]:
    """The gauges of one stream family; returns what sets them from its shards' states."""
    m, what = family.metric, family.what
    length = registry.gauge(f"{m}_stream_length", f"Entries in the {what} stream.")
    added = registry.counter(f"{m}_stream_entries_added_total", f"Entries ever added to the {what} stream.")
    dead = registry.gauge(f"{m}_dead_letters", f"Entries in the {what} dead-letter stream.")
    pending = registry.gauge(f"{m}_group_pending",
                             "Entries delivered to the group's consumers and not yet acknowledged.")
    lag = registry.gauge(f"{m}_group_lag", "Entries not yet acknowledged by the group (undelivered + pending).")
    age = registry.gauge(f"{m}_group_oldest_unacked_age_seconds",
                         "Age of the group's oldest unacknowledged entry (0 when none).")
    overdue = registry.gauge(f"{m}_group_overdue", "1 when the group lags beyond SHOPLINK_STREAM_MAX_RETENTION_S.")

    def update(states: list[ShardState]) -> None:
        for state in states:
            shard = str(state.shard)
            length.set(state.length, shard=shard)
            added.set(state.entries_added, shard=shard)
            dead.set(state.dead_letters, shard=shard)
            for g in state.groups:
                labels = {"shard": shard, "group": g.group}
                pending.set(g.pending, **labels)
                lag.set(g.unacked, **labels)
                age.set(g.oldest_unacked_age_s or 0.0, **labels)
                overdue.set(1.0 if g.overdue else 0.0, **labels)

    return update
