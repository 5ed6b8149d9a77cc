"""`shoplink count` over the player's event streams (with clicks beside them), in a subprocess
against real Redis and PostgreSQL: impressions, views and quartiles counted exactly after kills at
every point of a batch, with replayed duplicates, roll-ups, and `--rebuild`."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from redis.asyncio import Redis

from shoplink.config import Settings

from .test_count_worker import assert_exact, click_docs
from support.analytics_data import Seed
from support.api import METRICS_AUTH, Api
from support.click_data import xrange
from support.count import run_count, status_before_reading
from support.event_data import write_events
from support.funnel_batches import expected_funnel, funnel_batches, write_batches


async def assert_funnel(api: Api, s: Seed, docs: list[dict[str, Any]]) -> None:
    checks = [("videos", s.video_id, "video_id"), ("live", s.live_id, "live_session_id"),
              ("shops", s.shop_id, "shop_id"), ("creators", s.creator_id, "creator_id"),
              *[("anchors", a, "anchor_id") for a in s.video_anchor_ids],
              *[("products", p, "product_id") for p in s.product_ids]]
    for segment, entity_id, field in checks:
        reply = await api.get(f"/api/v1/stats/{segment}/{entity_id}?granularity=minute&from="
                              f"{int(time.time()) - 3000}")
        assert reply.status == 200, reply.body
        want = expected_funnel(docs, field, entity_id)
        got = reply.body["funnel"]
        assert {c: got["impressions"][c] for c in want["impressions"]} == want["impressions"], (segment, entity_id)
        assert {c: got["views"][c] for c in want["views"]} == want["views"], (segment, entity_id)
        assert [got["view_through"][f"q{q}"]["views"] for q in (25, 50, 75, 100)] == list(want["q"].values())
        assert got["unique_impressions"] == len(want["shown_to"]), (segment, entity_id)
        assert sum(item["impressions"] for item in reply.body["series"]) == sum(want["impressions"].values())


@pytest.mark.parametrize("point", ["after_read", "mid_batch", "after_apply", "mid_ack"])
async def test_a_killed_worker_leaves_the_funnel_exact(point: str, world: tuple[Seed, Api], redis: Redis,
                                                       settings: Settings) -> None:
    s, analyst = world
    start = int(time.time() * 1000) - 120_000
    batches = funnel_batches(s, 300, start)
    clicks = click_docs(s, 100, start)
    await write_batches(redis, batches)
    await write_events(redis, clicks)
    rc, _, err = await run_count(settings, "--exit-when-idle", "--no-rollup", crash_at=point,
                                 crash_after=3, count_batch=40, count_apply_chunk=10)
    assert rc == 17, err
    rc, out, err = await run_count(settings, "--exit-when-idle")
    assert rc == 0, err
    stats = orjson.loads(out)
    assert stats["claimed"] > 0
    if point in ("after_apply", "mid_ack", "mid_batch"):
        assert stats["duplicates"] > 0
    await assert_funnel(analyst, s, batches)
    await assert_exact(analyst, s, clicks)


async def test_duplicates_rollups_and_rebuild(world: tuple[Seed, Api], redis: Redis, settings: Settings) -> None:
    s, analyst = world
    start = int(time.time() * 1000) - 120_000
    batches = funnel_batches(s, 200, start)
    await write_batches(redis, batches)
    await write_batches(redis, [dict(b, replayed=True) for b in batches[50:70]])  # a spool replay
    rc, out, err = await run_count(settings, "--exit-when-idle", "--no-rollup")
    assert rc == 0, err
    stats = orjson.loads(out)
    events = sum(len(b["events"]) for b in batches)
    assert stats["applied"] == events
    assert stats["duplicates"] == sum(len(b["events"]) for b in batches[50:70])
    await assert_funnel(analyst, s, batches)
    rc, out, _ = await run_count(settings, "--rebuild")
    report = orjson.loads(out)
    assert rc == 0 and report["equal"], report
    assert report["events"] == events and report["compared_days"] > 0
    for _ in range(2):  # rolled up into PostgreSQL, twice: nothing doubles
        assert (await run_count(settings, "--rollup"))[0] == 0
    await assert_funnel(analyst, s, batches)
    rc, out, _ = await run_count(settings, "--rebuild")
    assert rc == 0 and orjson.loads(out)["equal"]
    # the view map: human impressions by playback second
    heat = (await analyst.get(f"/api/v1/stats/videos/{s.video_id}/heatmap")).body
    want: dict[int, int] = {}
    for b in batches:
        if b["ua_class"] == "human":
            for e in b["events"]:
                if e["type"] == "impression":
                    want[int(e["playback_s"])] = want.get(int(e["playback_s"]), 0) + 1
    assert {c["second"]: c["impressions"] for c in heat["view_map"]} == want
    # Redis is lost: the rolled-up funnel is still there
    await redis.flushall()
    day = (await analyst.get(f"/api/v1/stats/videos/{s.video_id}?granularity=day")).body["funnel"]
    assert day["impressions"]["total"] == sum(expected_funnel(batches, "video_id", s.video_id)["impressions"].values())
    assert day["unique_impressions"] == len(expected_funnel(batches, "video_id", s.video_id)["shown_to"])


async def test_malformed_batches_go_to_the_events_dead_letter_stream(world: tuple[Seed, Api], redis: Redis,
                                                                      settings: Settings) -> None:
    s, analyst = world
    batches = funnel_batches(s, 20, int(time.time() * 1000) - 60_000)
    await write_batches(redis, batches)
    good = batches[0]
    bad = [b"{nope", orjson.dumps(dict(good, events=[])), orjson.dumps(dict(good, schema_version=2)),
           orjson.dumps(dict(good, events=[dict(good["events"][0], type="click")]))]
    for payload in bad:
        await redis.xadd("shoplink:events:{1}", {"e": payload})
    rc, out, err = await run_count(settings, "--exit-when-idle")
    assert rc == 0, err
    assert orjson.loads(out)["dead"] == 4
    dead = await xrange(redis, "shoplink:events:dead:{1}")
    assert sorted(f[b"reason"].decode() for _, f in dead) == sorted(
        ["not_json", "invalid_field:events", "unsupported_version:2", "invalid_field:events"])
    await assert_funnel(analyst, s, batches)


async def test_status_and_metrics_report_the_event_streams_lag(world: tuple[Seed, Api], redis: Redis,
                                                               settings: Settings, anon: Api) -> None:
    """`count --status` and /metrics cover the player-event streams beside the click streams:
    what waits there is as visible as waiting clicks, and gone once counted."""
    s, _ = world
    batches = funnel_batches(s, 90, int(time.time() * 1000) - 60_000)
    await write_batches(redis, batches)
    doc = await status_before_reading(redis, settings, "events")
    assert sum(g["unacked"] for sh in doc["event_shards"] for g in sh["groups"]) == 90
    assert sum(sh["length"] for sh in doc["event_shards"]) == 90
    assert all(sh["stream"] == f"shoplink:events:{{{sh['shard']}}}" for sh in doc["event_shards"])
    assert max(g["oldest_unacked_age_s"] or 0 for sh in doc["event_shards"] for g in sh["groups"]) > 0
    assert sum(sh["length"] for sh in doc["shards"]) == 0  # no click waits
    metrics = (await anon.get("/metrics", headers=METRICS_AUTH)).body
    lag = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
              if line.startswith("shoplink_player_event_group_lag{"))
    assert lag == 90
    assert "shoplink_player_event_group_oldest_unacked_age_seconds" in metrics
    assert "shoplink_player_event_stream_length" in metrics
    rc, _, err = await run_count(settings, "--exit-when-idle", "--no-rollup")
    assert rc == 0, err
    doc = orjson.loads((await run_count(settings, "--status", "--interval", "0"))[1])
    assert sum(g["unacked"] for sh in doc["event_shards"] for g in sh["groups"]) == 0
    assert sum(sh["applied_total"] for sh in doc["shards"]) == sum(len(b["events"]) for b in batches)
