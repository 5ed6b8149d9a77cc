"""The operational view: per shard, stream length, consumer-group lag (entries not yet
acknowledged, and the age of the oldest), pending entries, dead letters, events per second and
the roll-up position. Used by `shoplink count --status` and by the /metrics collector."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import asyncpg

from shoplink.analytics import keys as k
from shoplink.analytics import repository as repo
from shoplink.analytics.streams import ShardState, shard_state
from shoplink.config import Settings
from shoplink.metrics import Registry
from shoplink.redis import AnyRedis


async def _sample(redis: AnyRedis, settings: Settings) -> tuple[list[ShardState], list[int]]:
    states = [await shard_state(redis, shard, max_retention_s=settings.stream_max_retention_s)
              for shard in range(settings.click_shards)]
    pipe = redis.pipeline(transaction=False)
    for shard in range(settings.click_shards):
        pipe.get(k.applied(shard))
    applied = [int(v or 0) for v in await pipe.execute()]
    return states, applied


async def status_report(redis: AnyRedis, pool: asyncpg.Pool | None, settings: Settings,
                        interval_s: float = 1.0) -> dict[str, Any]:
    """A JSON document; rates are measured over `interval_s` (0: no rates)."""
    t0 = time.monotonic()
    states, applied = await _sample(redis, settings)
    rates: list[tuple[float, float]] | None = None
    if interval_s > 0:
        await asyncio.sleep(interval_s)
        later, applied2 = await _sample(redis, settings)
        dt = time.monotonic() - t0
        rates = [((b.entries_added - a.entries_added) / dt, (y - x) / dt)
                 for a, b, x, y in zip(states, later, applied, applied2, strict=True)]
        states, applied = later, applied2
    rollup: dict[int, int] = {}
    if pool is not None:
        async with pool.acquire() as con:
            rollup = await repo.shard_seqs(con)
    shards = []
    for i, state in enumerate(states):
        doc = state.to_json()
        doc["applied_total"] = applied[i]
        doc["rollup_last_seq"] = rollup.get(state.shard, 0)
        if rates is not None:
            doc["events_per_s"] = round(rates[i][0], 1)
            doc["applied_per_s"] = round(rates[i][1], 1)
        shards.append(doc)
    overdue = [{"shard": s.shard, "group": g.group, "oldest_unacked_age_s": g.oldest_unacked_age_s}
               for s in states for g in s.groups if g.overdue]
    return {"shards": shards, "overdue_groups": overdue,
            "retention_s": settings.stream_retention_s,
            "max_retention_s": settings.stream_max_retention_s}


def register_metrics(registry: Registry, redis: AnyRedis, settings: Settings) -> None:
    """Add a collector that reads the streams' state at every scrape of /metrics."""
    length = registry.gauge("shoplink_click_stream_length", "Entries in the click stream.")
    added = registry.counter("shoplink_click_stream_entries_added_total", "Entries ever added to the stream.")
    applied = registry.counter("shoplink_click_applied_total",
                               "Events counted by the counters group (rates: rate() in Prometheus).")
    dead = registry.gauge("shoplink_click_dead_letters", "Entries in the dead-letter stream.")
    pending = registry.gauge("shoplink_click_group_pending",
                             "Entries delivered to the group's consumers and not yet acknowledged.")
    lag = registry.gauge("shoplink_click_group_lag",
                         "Entries not yet acknowledged by the group (undelivered + pending).")
    age = registry.gauge("shoplink_click_group_oldest_unacked_age_seconds",
                         "Age of the group's oldest unacknowledged entry (0 when none).")
    overdue = registry.gauge("shoplink_click_group_overdue",
                             "1 when the group lags beyond SHOPLINK_STREAM_MAX_RETENTION_S.")

    async def collect() -> None:
        states, applied_counts = await _sample(redis, settings)
        for state, applied_n in zip(states, applied_counts, strict=True):
            shard = str(state.shard)
            length.set(state.length, shard=shard)
            added.set(state.entries_added, shard=shard)
            applied.set(applied_n, shard=shard)
            dead.set(state.dead_letters, shard=shard)
            for g in state.groups:
                labels = {"shard": shard, "group": g.group}
                pending.set(g.pending, **labels)
                lag.set(g.unacked, **labels)
                age.set(g.oldest_unacked_age_s or 0.0, **labels)
                overdue.set(1.0 if g.overdue else 0.0, **labels)

    registry.register_collector(collect)
