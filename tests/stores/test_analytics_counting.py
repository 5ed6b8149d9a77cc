"""Counting in-process against real Redis and PostgreSQL: idempotent apply, classes and
outcomes, buckets, unique viewers, roll-ups (re-run, crash, Redis flush), trimming."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis

from shoplink.analytics import keys as k
from shoplink.analytics import reader as reader_module
from shoplink.analytics.apply import Applier
from shoplink.analytics.consumer import CountWorker
from shoplink.analytics.events import parse
from shoplink.analytics.reader import CounterReader
from shoplink.analytics.rollup import Checkpoint, Rollup
from shoplink.analytics.streams import ensure_group, shard_state, trim_shard
from shoplink.config import Settings

from support.event_data import event, expected_counts, viewer, write_events

SHARDS = 4


def ts(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def now_ms() -> int:
    return int(time.time() * 1000)


async def count_all(settings: Settings, redis: Redis, pool: asyncpg.Pool) -> Any:
    worker = CountWorker(settings.replace(count_block_ms=50), redis, pool, exit_when_idle=True,
                         rollups=False, trims=False)
    return await worker.run()


def totals(counts: dict[int, list[int]]) -> list[int]:
    out = [0] * len(k.PAIRS)
    for row in counts.values():
        for i, n in enumerate(row):
            out[i] += n
    return out


def by_class(row: list[int]) -> dict[str, int]:
    out = {c: 0 for c in k.CLASSES}
    for (c, _), n in zip(k.CLICK_PAIRS, row, strict=False):
        out[c] += n
    return out


def by_outcome(row: list[int]) -> dict[str, int]:
    out = {o: 0 for o in k.OUTCOMES}
    for (_, o), n in zip(k.CLICK_PAIRS, row, strict=False):
        out[o] += n
    return out


def reader(redis: Redis, pool: asyncpg.Pool, settings: Settings) -> CounterReader:
    return CounterReader(redis, pool, SHARDS, settings.stats_buckets)


async def test_classes_and_outcomes_are_counted_apart(settings: Settings, redis: Redis,
                                                      pool: asyncpg.Pool) -> None:
    base = now_ms() - 60_000
    docs = []
    plan = [("human", "redirected", 5), ("human", "fallback", 2), ("human", "gone", 1),
            ("bot", "redirected", 3), ("link_preview", "redirected", 4), ("link_preview", "gone", 1)]
    i = 0
    for ua, outcome, n in plan:
        for _ in range(n):
            i += 1
            docs.append(event(ts_ms=base + i, ua_class=ua, outcome=outcome, viewer_id=i))
    docs.append(event(ts_ms=base, anchor_id=None, video_id=None, product_id=None, shop_id=None,
                      creator_id=None, outcome="not_found", code="nosuch"))
    await write_events(redis, docs)
    stats = await count_all(settings, redis, pool)
    assert stats.applied == len(docs) and stats.dead == 0
    row = totals(await reader(redis, pool, settings).counts("video", 10, "day", base // 1000 - 86400,
                                                            base // 1000 + 86400))
    want = expected_counts(docs, "video_id", 10)
    assert by_class(row) == want["by_class"]
    assert by_outcome(row) == want["by_outcome"]
    for kind in ("anchor", "product", "shop", "creator"):
        row = totals(await reader(redis, pool, settings).counts(kind, {"anchor": 1, "product": 100,
                                                                       "shop": 1000, "creator": 7}[kind],
                                                                "minute", base // 1000 - 600,
                                                                base // 1000 + 600))
        assert sum(row) == 16


async def test_the_same_event_twice_with_different_stream_ids_counts_once(
        settings: Settings, redis: Redis, pool: asyncpg.Pool) -> None:
    base = now_ms()
    docs = [event(ts_ms=base + i, viewer_id=i) for i in range(20)]
    await write_events(redis, docs)
    await count_all(settings, redis, pool)
    # a spool replay writes some of them again (new stream ids), later, plus new ones
    replay = [dict(d, replayed=True) for d in docs[:7]]
    fresh = [event(ts_ms=base + 100 + i, viewer_id=i) for i in range(3)]
    ids = await write_events(redis, [*replay, *fresh, *replay[:2]])
    assert len(set(ids)) == 12
    stats = await count_all(settings, redis, pool)
    assert stats.applied == 3 and stats.duplicates == 9
    row = totals(await reader(redis, pool, settings).counts("anchor", 1, "hour", base // 1000 - 7200,
                                                            base // 1000 + 7200))
    assert sum(row) == 23


async def test_applying_a_batch_twice_changes_nothing(settings: Settings, redis: Redis,
                                                      pool: asyncpg.Pool) -> None:
    applier = Applier(redis, buckets=settings.stats_buckets, dedup_ttl_s=3600, uniques_ttl_s=3600)
    import orjson
    events = [parse(orjson.dumps(event(ts_ms=now_ms() + i, viewer_id=i))) for i in range(50)]
    first = await applier.apply(1, events)
    await redis.script_flush()  # a restarted or failed-over Redis has no scripts: loaded again
    again = await applier.apply(1, events)
    half = await applier.apply(1, [*events[:10], *[parse(orjson.dumps(event(ts_ms=now_ms(), viewer_id=99)))]])
    assert (first.applied, again.applied, again.duplicates) == (50, 0, 50)
    assert (half.applied, half.duplicates) == (1, 10)
    row = totals(await reader(redis, pool, settings).counts("video", 10, "day", 0, now_ms() // 1000 + 86400))
    assert sum(row) == 51


async def test_a_bounded_apply_splits_into_short_calls_and_counts_exactly(settings: Settings, redis: Redis,
                                                                         pool: asyncpg.Pool) -> None:
    import orjson
    applier = Applier(redis, buckets=settings.stats_buckets, dedup_ttl_s=3600, uniques_ttl_s=3600)
    base = now_ms()
    events = [parse(orjson.dumps(event(ts_ms=base + i, viewer_id=i))) for i in range(60)]
    limit = 40
    increments = applier.plan(1, events).size()
    assert increments > 3 * limit
    await redis.config_resetstat()
    firsts: list[int] = []
    # five events come twice in the same read: counted once, whichever call they fall in
    result = await applier.apply_bounded(1, [*events, *events[:5]], funnel=False, limit=limit,
                                         after_first=lambda: firsts.append(1))
    calls = int((await redis.info("commandstats"))["cmdstat_evalsha"]["calls"])
    assert (result.applied, result.duplicates) == (60, 5)
    assert firsts == [1]
    assert -(-increments // limit) <= calls <= 65 + 1
    again = await applier.apply_bounded(1, events, funnel=False, limit=1_000_000)
    assert (again.applied, again.duplicates) == (0, 60)
    row = totals(await reader(redis, pool, settings).counts("video", 10, "day", 0, base // 1000 + 86400))
    assert sum(row) == 60


async def test_minute_hour_and_day_boundaries(settings: Settings, redis: Redis, pool: asyncpg.Pool) -> None:
    stamps = ["2026-03-01T23:59:59.999", "2026-03-02T00:00:00.000", "2026-03-02T00:00:59.999",
              "2026-03-02T00:01:00.000", "2026-03-02T00:59:59.999", "2026-03-02T01:00:00.000"]
    docs = [event(ts_ms=ts(s), viewer_id=i) for i, s in enumerate(stamps)]
    await write_events(redis, docs)
    await count_all(settings, redis, pool)
    r = reader(redis, pool, settings)
    day0 = ts("2026-03-01T00:00:00") // 1000
    minute = {b: sum(v) for b, v in (await r.counts("video", 10, "minute", day0, day0 + 2 * 86400)).items()}
    assert minute == {ts("2026-03-01T23:59:00") // 1000: 1, ts("2026-03-02T00:00:00") // 1000: 2,
                      ts("2026-03-02T00:01:00") // 1000: 1, ts("2026-03-02T00:59:00") // 1000: 1,
                      ts("2026-03-02T01:00:00") // 1000: 1}
    hour = {b: sum(v) for b, v in (await r.counts("video", 10, "hour", day0, day0 + 2 * 86400)).items()}
    assert hour == {ts("2026-03-01T23:00:00") // 1000: 1, ts("2026-03-02T00:00:00") // 1000: 4,
                    ts("2026-03-02T01:00:00") // 1000: 1}
    day = {b: sum(v) for b, v in (await r.counts("video", 10, "day", day0, day0 + 2 * 86400)).items()}
    assert day == {day0: 1, day0 + 86400: 5}
    # a range boundary cuts between buckets: [00:00, 00:01) holds the two clicks of that minute only
    cut = await r.counts("video", 10, "minute", ts("2026-03-02T00:00:00") // 1000,
                         ts("2026-03-02T00:01:00") // 1000)
    assert sum(totals(cut)) == 2
    # rolled up, the same answers come from PostgreSQL
    await Rollup(redis, pool, SHARDS).run_once()
    rolled = await r.counts("video", 10, "hour", day0, day0 + 2 * 86400)
    assert {b: sum(v) for b, v in rolled.items()} == hour
    async with pool.acquire() as con:
        assert await con.fetchval("SELECT sum(human_redirected) FROM click_counts "
                                  "WHERE entity_kind = 'video' AND granularity = 'minute'") == 6


async def test_unique_viewers_within_hyperloglog_error(settings: Settings, redis: Redis,
                                                       pool: asyncpg.Pool) -> None:
    base = now_ms() - 1000
    docs = []
    for i in range(6000):
        docs.append(event(ts_ms=base, viewer_id=i % 4000, anchor_id=1 + i % 8))  # 4000 distinct humans
    for i in range(500):
        docs.append(event(ts_ms=base, viewer_id=f"bot{i}", ua_class="bot"))  # bots are not viewers
    await write_events(redis, docs)
    await count_all(settings, redis, pool)
    r = reader(redis, pool, settings)
    start, end = base // 1000 - 10, base // 1000 + 10
    total, _per_day = await r.uniques("video", 10, start, end)
    assert abs(total - 4000) <= 4000 * 0.03, total  # standard error 0.81 %
    # rolled up (HyperLogLog unions in PostgreSQL) and after a Redis flush: the same estimate
    await Rollup(redis, pool, SHARDS).run_once()
    assert (await r.uniques("video", 10, start, end))[0] == total
    await redis.flushall()
    assert (await r.uniques("video", 10, start, end))[0] == total
    # a viewer seen again after the flush is not counted twice; a new one is
    await write_events(redis, [event(ts_ms=base, viewer_id=5), event(ts_ms=base, viewer_id="new-1")])
    await count_all(settings, redis, pool)
    again, _ = await r.uniques("video", 10, start, end)
    assert again in (total, total + 1)
    assert viewer(5) != viewer("new-1")


FIELDS = {"anchor": "anchor_id", "video": "video_id", "live": "live_session_id", "product": "product_id",
          "shop": "shop_id", "creator": "creator_id", "plan": "plan_id"}


async def test_entity_numbers_derive_exactly_from_the_combos(settings: Settings, redis: Redis,
                                                             pool: asyncpg.Pool) -> None:
    """Redis counts per combo (an event's entity ids); every entity's counts, top-N and unique
    viewers are derived from its combos, before and after the roll-up and after a Redis flush,
    even when an anchor's plan changes between clicks and ids share digits (1, 13, 100, 1000)."""
    base = now_ms() - 10_000
    docs: list[dict[str, Any]] = []

    def click(i: int, **ids: Any) -> None:
        cls = ("human", "human", "bot", "link_preview")[i % 4]
        docs.append(event(ts_ms=base + len(docs), viewer_id=i % 5, ua_class=cls,
                          outcome=("redirected", "fallback")[i % 2], **ids))

    for i in range(9):  # anchor 1: plan 50, then 51, then none (three combos of one anchor)
        click(i, anchor_id=1, plan_id=(50, 51, None)[i // 3])
    for i in range(7):  # anchor 13 (same shard): another product and creator, plan 50
        click(i + 1, anchor_id=13, product_id=101, creator_id=8, plan_id=50)
    for i in range(6):  # anchor 21 (same shard) in a live session: product 100 of another shop
        click(i + 2, anchor_id=21, video_id=None, live_session_id=3, shop_id=1001, playback_s=None)
    await write_events(redis, docs)
    await count_all(settings, redis, pool)
    r = reader(redis, pool, settings)
    window = (base // 1000 - 3600, base // 1000 + 3600)
    entities = [("anchor", 1), ("anchor", 13), ("anchor", 21), ("video", 10), ("live", 3),
                ("product", 100), ("product", 101), ("shop", 1000), ("shop", 1001), ("creator", 7),
                ("creator", 8), ("plan", 50), ("plan", 51)]

    def humans(parent: str, parent_id: int, child: str) -> dict[int, int]:
        out: dict[int, int] = {}
        for d in docs:
            if d[FIELDS[parent]] == parent_id and d["ua_class"] == "human":
                out[d[FIELDS[child]]] = out.get(d[FIELDS[child]], 0) + 1
        return out

    async def check() -> None:
        for kind, eid in entities:
            want = expected_counts(docs, FIELDS[kind], eid)
            row = totals(await r.counts(kind, eid, "hour", *window))
            assert (sum(row), by_class(row), by_outcome(row)) == \
                (want["clicks"], want["by_class"], want["by_outcome"]), (kind, eid)
            assert (await r.uniques(kind, eid, *window))[0] == want["unique_viewers"], (kind, eid)
        for parent, parent_id in (("video", 10), ("live", 3), ("shop", 1000), ("shop", 1001),
                                  ("creator", 7), ("creator", 8)):
            assert await r.top(parent, parent_id) == humans(parent, parent_id, k.TOP_CHILD[parent])

    await check()
    assert await r.top("creator", 7) == {100: 5 + 2}  # anchors 1 and 21, two shops, one product
    await Rollup(redis, pool, SHARDS).run_once()
    await check()
    await redis.flushall()
    await check()


async def test_reads_find_every_combo_when_the_scans_take_many_pages(
        settings: Settings, redis: Redis, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The reader finds an entity's combos with SSCAN; with a tiny page size every scan takes
    many round trips (and the unique-viewer scans stay in order): the answers do not change."""
    base = now_ms() - 5000
    docs = [event(ts_ms=base + i, anchor_id=4 * (1 + i % 60), viewer_id=i % 90,
                  ua_class=("human", "bot")[i % 7 == 0]) for i in range(600)]  # 60 anchors, shard 0
    await write_events(redis, docs)
    await count_all(settings, redis, pool)
    r = reader(redis, pool, settings)
    window = (base // 1000 - 600, base // 1000 + 600)

    async def answers() -> tuple[int, int, dict[int, int]]:
        return (sum(totals(await r.counts("video", 10, "minute", *window))),
                (await r.uniques("video", 10, *window))[0], await r.top("video", 10))

    want = expected_counts(docs, "video_id", 10)
    one_page = await answers()
    assert one_page[:2] == (600, want["unique_viewers"]) and len(one_page[2]) == 60
    monkeypatch.setattr(reader_module, "_SCAN_COUNT", 2)
    assert await answers() == one_page


async def test_rollup_moves_counters_left_in_the_earlier_per_entity_layout(
        settings: Settings, redis: Redis, pool: asyncpg.Pool) -> None:
    """Counters written by a version that counted per entity (c:<kind>:<id>, t:<parent>:<id>,
    u:<kind>:<id>:<day>) reach PostgreSQL through the next roll-up after an upgrade."""
    minute = (now_ms() // 1000) // 60 * 60
    day = minute - minute % 86400
    await redis.hset("sla:{2}:c:video:10", mapping={f"{minute}:hr": 4, f"{minute}:bg": 1})
    await redis.hset("sla:{2}:t:video:10", mapping={"6": 4})
    await redis.pfadd(f"sla:{{2}}:u:video:10:{day}", viewer(1), viewer(2))
    await redis.sadd(k.dirty(2), "sla:{2}:c:video:10", "sla:{2}:t:video:10")
    await redis.sadd(k.udirty(2), f"sla:{{2}}:u:video:10:{day}")
    await Rollup(redis, pool, SHARDS).run_once()
    await redis.flushall()
    r = reader(redis, pool, settings)
    row = totals(await r.counts("video", 10, "day", day, day + 86400))
    assert by_class(row) == {"human": 4, "bot": 1, "link_preview": 0}
    assert await r.top("video", 10) == {6: 4}
    assert (await r.uniques("video", 10, day, day + 86400))[0] == 2


async def test_rollup_rerun_crash_and_redis_flush_keep_counts_exact(settings: Settings, redis: Redis,
                                                                    pool: asyncpg.Pool) -> None:
    base = now_ms() - 5000
    docs = [event(ts_ms=base + i, viewer_id=i, anchor_id=1 + i % 5,
                  ua_class=("human", "bot", "link_preview")[i % 3], playback_s=float(i % 30))
            for i in range(300)]
    await write_events(redis, docs)
    await count_all(settings, redis, pool)
    r = reader(redis, pool, settings)
    window = (base // 1000 - 100, base // 1000 + 100)

    async def snapshot() -> tuple[list[int], dict[int, int], dict[int, int]]:
        return (totals(await r.counts("video", 10, "minute", *window)), await r.heatmap(10),
                await r.top("video", 10))

    before = await snapshot()
    assert sum(before[0]) == 300 and sum(before[1].values()) == 100 and sum(before[2].values()) == 100

    class Boom(Exception):
        pass

    def crash_at(point: str) -> Checkpoint:
        def crash(seen: str, shard: int, ids: Sequence[bytes]) -> None:
            if seen == point:
                raise Boom(point)
        return crash

    # crash after the move was taken but before PostgreSQL committed: reads stay exact meanwhile
    with pytest.raises(Boom):
        await Rollup(redis, pool, SHARDS, checkpoint=crash_at("after_move")).run_once()
    assert await snapshot() == before
    # crash after the commit, before the moving hashes were dropped: still exact, not doubled
    with pytest.raises(Boom):
        await Rollup(redis, pool, SHARDS, checkpoint=crash_at("after_move_commit")).run_once()
    assert await snapshot() == before
    report = await Rollup(redis, pool, SHARDS).run_once()
    assert report.skipped_moves >= 1
    assert await snapshot() == before
    # re-running a roll-up with nothing new changes nothing
    await Rollup(redis, pool, SHARDS).run_once()
    await Rollup(redis, pool, SHARDS).run_once()
    assert await snapshot() == before
    # new clicks land in Redis on top of the history
    await write_events(redis, [event(ts_ms=base + 1, viewer_id=1)])
    await count_all(settings, redis, pool)
    after = await snapshot()
    assert sum(after[0]) == 301
    await Rollup(redis, pool, SHARDS).run_once()
    # Redis is lost: the rolled-up history is intact
    await redis.flushall()
    assert await snapshot() == after


async def test_trimming_never_overtakes_a_group(settings: Settings, redis: Redis, pool: asyncpg.Pool) -> None:
    old = now_ms() - 3 * 86400 * 1000
    stream = k.stream(1)
    await ensure_group(redis, stream)
    await ensure_group(redis, stream, "attribution")
    ids = [await redis.xadd(stream, {"e": b"{}"}, id=f"{old + i}-0") for i in range(10)]
    # counters consumed everything; attribution read 4 and acknowledged 2
    await redis.xreadgroup(k.GROUP, "c", {stream: ">"}, count=100)
    await redis.xack(stream, k.GROUP, *ids)
    await redis.xreadgroup("attribution", "a", {stream: ">"}, count=4)
    await redis.xack(stream, "attribution", *ids[:2])
    removed, state = await trim_shard(redis, 1, retention_s=86400, max_retention_s=2 * 86400)
    assert removed == 2 and await redis.xlen(stream) == 8
    attribution = next(g for g in state.groups if g.group == "attribution")
    assert attribution.overdue and attribution.pending == 2 and attribution.unacked == 8
    # once attribution acknowledges everything, retention decides
    await redis.xreadgroup("attribution", "a", {stream: ">"}, count=100)
    await redis.xack(stream, "attribution", *ids)
    removed, _ = await trim_shard(redis, 1, retention_s=86400, max_retention_s=2 * 86400)
    assert removed == 8
    recent = await redis.xadd(stream, {"e": b"{}"})
    removed, state = await trim_shard(redis, 1, retention_s=86400, max_retention_s=2 * 86400)
    assert removed == 0 and await redis.xlen(stream) == 1 and recent
    assert not any(g.overdue for g in state.groups)
    fresh = await shard_state(redis, 1, max_retention_s=86400)
    assert fresh.length == 1


async def test_lag_of_a_group_that_has_not_read_yet(redis: Redis, pool: asyncpg.Pool) -> None:
    """Redis reports the lag as nil once the stream has a deleted entry after the group's position
    (here: a group that has read nothing); the state counts it from the stream instead of taking
    the pending entries (0) for the lag (alerting on lag depends on it)."""
    stream = k.stream(2)
    ids = [await redis.xadd(stream, {"e": b"{}"}, id=f"{1000 + i}-0") for i in range(5)]
    await ensure_group(redis, stream)  # at 0-0: has read nothing
    await ensure_group(redis, stream, "attribution")
    await redis.xreadgroup("attribution", "a", {stream: ">"}, count=2)  # read 2, acknowledged none
    await redis.xdel(stream, ids[3])
    groups = {g["name"].decode(): g for g in await redis.xinfo_groups(stream)}
    assert groups[k.GROUP]["lag"] is None and groups["attribution"]["lag"] is None  # what Redis says
    state = await shard_state(redis, 2, max_retention_s=86400)
    lags = {g.group: (g.undelivered, g.pending, g.unacked) for g in state.groups}
    assert lags == {k.GROUP: (4, 0, 4), "attribution": (2, 2, 4)}
    counters = next(g for g in state.groups if g.group == k.GROUP)
    assert counters.oldest_unacked_id == "1000-0"
    # past the last entry nothing is undelivered, whatever Redis can tell
    await redis.xreadgroup(k.GROUP, "c", {stream: ">"}, count=100)
    state = await shard_state(redis, 2, max_retention_s=86400)
    assert {g.group: g.undelivered for g in state.groups} == {k.GROUP: 0, "attribution": 2}
