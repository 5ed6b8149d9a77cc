"""`shoplink count` in a subprocess against real Redis and PostgreSQL: exact counts after a
normal run, after kills at every point of a batch, with two workers sharing the group, with
duplicates, after --rebuild, roll-up re-runs and a Redis flush; dead letters; --status; /metrics."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import pytest
from redis.asyncio import Redis

from shoplink.analytics import keys as k
from shoplink.config import Settings

from support.analytics_data import Seed
from support.api import METRICS_AUTH, Api
from support.click_data import xrange
from support.count import run_count, start_count_worker, status_before_reading, stop_count_worker
from support.event_data import event, expected_counts, write_events, write_raw
from support.wait import until

CLASSES = ("human", "human", "human", "bot", "link_preview")
OUTCOMES = ("redirected", "redirected", "fallback", "gone")


def click_docs(s: Seed, n: int, start_ms: int | None = None) -> list[dict[str, Any]]:
    start_ms = start_ms or int(time.time() * 1000) - 120_000
    docs = []
    for i in range(n):
        if i % 7 == 6:
            docs.append(event(ts_ms=start_ms + i * 10, anchor_id=s.live_anchor_id, video_id=None,
                              live_session_id=s.live_id, product_id=s.product_ids[0], shop_id=s.shop_id,
                              creator_id=s.creator_id, playback_s=float(i % 50), viewer_id=i % 97,
                              ua_class=CLASSES[i % 5], outcome=OUTCOMES[i % 4]))
        else:
            j = i % len(s.video_anchor_ids)
            docs.append(event(ts_ms=start_ms + i * 10, anchor_id=s.video_anchor_ids[j], video_id=s.video_id,
                              product_id=s.product_ids[j], shop_id=s.shop_id, creator_id=s.creator_id,
                              playback_s=float(j * 10 + i % 8), viewer_id=i % 97,
                              ua_class=CLASSES[i % 5], outcome=OUTCOMES[i % 4]))
    return docs


async def assert_exact(api: Api, s: Seed, docs: list[dict[str, Any]]) -> None:
    """Every entity's totals in the stats API equal what the events say."""
    checks = [("videos", s.video_id, "video_id"), ("live", s.live_id, "live_session_id"),
              ("shops", s.shop_id, "shop_id"), ("creators", s.creator_id, "creator_id"),
              *[("anchors", a, "anchor_id") for a in (*s.video_anchor_ids, s.live_anchor_id)],
              *[("products", p, "product_id") for p in s.product_ids]]
    for segment, entity_id, field in checks:
        reply = await api.get(f"/api/v1/stats/{segment}/{entity_id}?granularity=minute&from="
                              f"{int(time.time()) - 3000}")
        assert reply.status == 200, reply.body
        want = expected_counts(docs, field, entity_id)
        got = reply.body["totals"]
        assert (got["clicks"], got["by_class"], got["by_outcome"]) == \
            (want["clicks"], want["by_class"], want["by_outcome"]), (segment, entity_id)


async def test_normal_run_counts_exactly(world: tuple[Seed, Api], redis: Redis, settings: Settings) -> None:
    s, analyst = world
    docs = click_docs(s, 700)
    await write_events(redis, docs)
    rc, out, err = await run_count(settings, "--exit-when-idle")
    assert rc == 0, err
    stats = orjson.loads(out)
    assert stats["applied"] == 700 and stats["dead"] == 0 and stats["duplicates"] == 0
    await assert_exact(analyst, s, docs)
    status = await run_count(settings, "--status", "--interval", "0")
    doc = orjson.loads(status[1])
    for shard in doc["shards"]:
        group = next(g for g in shard["groups"] if g["group"] == "counters")
        assert group["pending"] == 0 and group["unacked"] == 0


@pytest.mark.parametrize("point", ["after_read", "mid_batch", "after_apply", "mid_ack"])
async def test_a_killed_worker_leaves_counts_exact(point: str, world: tuple[Seed, Api], redis: Redis,
                                                   settings: Settings) -> None:
    s, analyst = world
    docs = click_docs(s, 400)
    await write_events(redis, docs)
    rc, _, err = await run_count(settings, "--exit-when-idle", "--no-rollup", crash_at=point,
                                 crash_after=2, count_batch=40, count_apply_chunk=10)
    assert rc == 17, err
    rc, out, err = await run_count(settings, "--exit-when-idle")
    assert rc == 0, err
    stats = orjson.loads(out)
    assert stats["claimed"] > 0  # the dead worker's pending entries were reclaimed
    if point in ("after_apply", "mid_ack", "mid_batch"):
        assert stats["duplicates"] > 0  # ...and recognised as already applied
    await assert_exact(analyst, s, docs)


async def test_two_workers_share_the_group_and_one_is_killed(world: tuple[Seed, Api], redis: Redis,
                                                             settings: Settings) -> None:
    s, analyst = world
    docs = click_docs(s, 3000)
    await write_events(redis, docs)

    async def worker(**crash: Any) -> asyncio.subprocess.Process:
        return await start_count_worker(settings, "--exit-when-idle", count_batch=50, **crash)

    # Both join the group; the survivor is started once the doomed one holds entries, and the
    # doomed one dies with entries applied but not acknowledged.
    for n in range(4):
        await redis.xgroup_create(f"shoplink:clicks:{{{n}}}", "counters", id="0", mkstream=True)
    doomed = await worker(crash_at="after_apply", crash_after=3)

    async def holding() -> bool:
        pending = [(await redis.xpending(f"shoplink:clicks:{{{n}}}", "counters"))["pending"]
                   for n in range(4)]
        return any(pending) or doomed.returncode is not None

    await until(holding, timeout=30)
    survivor = await worker()
    doomed_out, survivor_out = await asyncio.wait_for(
        asyncio.gather(doomed.communicate(), survivor.communicate()), timeout=120)
    assert survivor.returncode == 0, survivor_out[1].decode()
    assert doomed.returncode == 17, doomed_out[1].decode()
    stats = orjson.loads(survivor_out[0])
    assert stats["claimed"] > 0
    await assert_exact(analyst, s, docs)


async def test_duplicates_rebuild_rollup_rerun_and_redis_flush(world: tuple[Seed, Api], redis: Redis,
                                                               settings: Settings) -> None:
    s, analyst = world
    docs = click_docs(s, 500)
    await write_events(redis, docs)
    await write_events(redis, [dict(d, replayed=True) for d in docs[100:160]])  # a spool replay
    rc, out, err = await run_count(settings, "--exit-when-idle", "--no-rollup")
    assert rc == 0, err
    assert orjson.loads(out)["duplicates"] == 60
    await assert_exact(analyst, s, docs)
    # the rebuild from the streams equals the live counts (Redis only so far)
    rc, out, err = await run_count(settings, "--rebuild")
    report = orjson.loads(out)
    assert rc == 0 and report["equal"], report
    assert report["events"] == 500 and report["duplicates"] == 60 and report["compared_buckets"] > 0
    # roll up, and again: nothing doubles
    for _ in range(2):
        rc, out, err = await run_count(settings, "--rollup")
        assert rc == 0, err
    await assert_exact(analyst, s, docs)
    rc, out, _ = await run_count(settings, "--rebuild")
    assert rc == 0 and orjson.loads(out)["equal"]
    # a roll-up killed after its PostgreSQL commit is finished by the next one, exactly
    more = click_docs(s, 70, start_ms=int(time.time() * 1000) - 60_000)
    await write_events(redis, more)
    assert (await run_count(settings, "--exit-when-idle", "--no-rollup"))[0] == 0
    rc, _, err = await run_count(settings, "--rollup", crash_at="after_move_commit")
    assert rc == 17, err
    await assert_exact(analyst, s, docs + more)
    assert (await run_count(settings, "--rollup"))[0] == 0
    await assert_exact(analyst, s, docs + more)
    # a live counter that drifted is caught by the rebuild: one click too many in the counts of
    # the first event's combo shows in the minute, hour and day of each of its 5 entities
    first = more[0]
    combo = k.combo_id(tuple(first[f] for f in ("anchor_id", "video_id", "live_session_id", "product_id",
                                                "shop_id", "creator_id", "plan_id")))
    shard = first["anchor_id"] % 4
    await redis.hincrby(k.counts(shard, combo), f"{(first['ts_ms'] // 1000) // 60 * 60}:hr", 1)
    await redis.sadd(k.dirty(shard), k.counts(shard, combo))  # as every live hash is (keys.py)
    rc, out, _ = await run_count(settings, "--rebuild")
    assert rc == 1 and orjson.loads(out)["mismatch_count"] == 3 * 5
    await redis.hincrby(k.counts(shard, combo), f"{(first['ts_ms'] // 1000) // 60 * 60}:hr", -1)
    # Redis is lost: everything rolled up is still there
    assert (await run_count(settings, "--rollup"))[0] == 0
    await redis.flushall()
    reply = await analyst.get(f"/api/v1/stats/videos/{s.video_id}?granularity=day")
    assert reply.body["totals"]["clicks"] == expected_counts(docs + more, "video_id", s.video_id)["clicks"]


async def test_malformed_entries_go_to_the_dead_letter_stream(world: tuple[Seed, Api], redis: Redis,
                                                              settings: Settings) -> None:
    s, analyst = world
    docs = click_docs(s, 50)
    await write_events(redis, docs[:25])
    good = docs[0]
    await write_raw(redis, 1, {"e": b"{not json"})
    await write_raw(redis, 1, {"e": orjson.dumps({k: v for k, v in good.items() if k != "ua_class"})})
    await write_raw(redis, 2, {"e": orjson.dumps(dict(good, schema_version=2, event_id="01" + "A" * 24))})
    await write_raw(redis, 3, {"payload": b"wrong field"})
    await write_raw(redis, 0, {"e": b"[1, 2]"})
    await write_events(redis, docs[25:])
    rc, out, err = await run_count(settings, "--exit-when-idle")
    assert rc == 0, err
    assert orjson.loads(out)["dead"] == 5
    reasons = []
    for shard in range(4):
        for _, fields in await xrange(redis, f"shoplink:clicks:dead:{{{shard}}}"):
            reasons.append(fields[b"reason"].decode())
            assert fields[b"stream"] == f"shoplink:clicks:{{{shard}}}".encode()
    assert sorted(reasons) == sorted(["not_json", "missing_field:ua_class", "unsupported_version:2",
                                      "missing_payload", "not_an_object"])
    await assert_exact(analyst, s, docs)
    for shard in range(4):
        assert (await redis.xpending(f"shoplink:clicks:{{{shard}}}", "counters"))["pending"] == 0


async def test_status_and_metrics_report_lag(world: tuple[Seed, Api], redis: Redis, settings: Settings,
                                             anon: Api) -> None:
    s, _ = world
    docs = click_docs(s, 120)
    await write_events(redis, docs)
    doc = await status_before_reading(redis, settings, "clicks")
    lag = sum(g["unacked"] for sh in doc["shards"] for g in sh["groups"])
    assert lag == 120
    assert all("events_per_s" in sh for sh in doc["shards"])
    oldest = max(g["oldest_unacked_age_s"] or 0 for sh in doc["shards"] for g in sh["groups"])
    assert oldest > 0
    metrics = (await anon.get("/metrics", headers=METRICS_AUTH)).body
    assert 'shoplink_click_group_lag{group="counters",shard="0"}' in metrics
    total = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                if line.startswith("shoplink_click_group_lag{"))
    assert total == 120
    assert "shoplink_click_group_oldest_unacked_age_seconds" in metrics
    assert "shoplink_click_group_pending" in metrics and "shoplink_click_stream_length" in metrics


async def test_a_sigterm_during_the_start_up_ends_in_a_clean_exit(settings: Settings) -> None:
    """SIGTERM while the worker is still connecting (a restart, a scale-down during a deploy)
    must end like any stop: exit 0, not death by the signal (-15). The worker's first PostgreSQL
    connection goes through a gate here, held until the signal has been sent."""
    db = urlsplit(settings.database_url)
    reached, gate = asyncio.Event(), asyncio.Event()

    async def gated(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        reached.set()
        await gate.wait()
        server_r, server_w = await asyncio.open_connection(db.hostname, db.port)

        async def pipe(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            try:
                while data := await r.read(65536):
                    w.write(data)
                    await w.drain()
            finally:
                w.close()

        await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w), return_exceptions=True)

    proxy = await asyncio.start_server(gated, "127.0.0.1", 0)
    port = proxy.sockets[0].getsockname()[1]
    try:
        through = settings.replace(database_url=urlunsplit(db._replace(netloc=f"{db.username}@127.0.0.1:{port}")))
        proc = await start_count_worker(through)
        await asyncio.wait_for(reached.wait(), timeout=30)  # started, connecting to PostgreSQL
        proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.2)
        gate.set()
        code, err = await stop_count_worker(proc)
        assert code == 0, err[-3000:]
    finally:
        proxy.close()
