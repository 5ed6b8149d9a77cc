"""The replay: video anchors made from the pin timeline, clipped to the recording."""

from __future__ import annotations

import asyncio

import asyncpg
from aiohttp import ClientSession
from redis.asyncio import Redis

from shoplink.changes import Change, ChangeBus

from support.api import AccountFactory, Api, ServerFactory
from support.live_data import insert_video, live_with_products, seller_with_products, set_timeline
from support.services import RedisProcess
from support.wait import until


async def _known_live(host: Api, ids: list[int], pool: asyncpg.Pool) -> int:
    """start@0, pin A@10, pin B@20, unpin A@40, pin C@50, unpin B@95, end@130 (C still pinned)."""
    live_id = await live_with_products(host, ids, start=True)
    base = f"/api/v1/live/{live_id}"
    a, b, c = ids
    for method, path, body in (("POST", f"{base}/pins", {"product_id": a}),
                               ("POST", f"{base}/pins", {"product_id": b}),
                               ("DELETE", f"{base}/pins/{a}", None),
                               ("POST", f"{base}/pins", {"product_id": c}),
                               ("DELETE", f"{base}/pins/{b}", None)):
        reply = await host.request(method, path, json=body)
        assert reply.status in (200, 201), reply.body
    early = await host.post(f"{base}/replay", {"video_id": 1})
    assert early.status == 409 and early.body["error"]["code"] == "not_ended"
    assert (await host.post(f"{base}/end")).status == 200
    await set_timeline(pool, live_id, {1: 0, 2: 10, 3: 20, 4: 40, 5: 50, 6: 95, 7: 130}, 130)
    return live_id


async def test_replay_anchors_from_the_pin_timeline(make_account: AccountFactory, pool: asyncpg.Pool,
                                                    redis_proc: RedisProcess) -> None:
    host, ids = await seller_with_products(make_account, 3)
    live_id = await _known_live(host, ids, pool)
    video_id = await insert_video(pool, host.account_id, duration_s=100.0)

    bus_client = Redis.from_url(redis_proc.url)
    bus = ChangeBus(bus_client)
    seen: list[Change] = []
    bus.subscribe(seen.append)
    task = asyncio.create_task(bus.run())
    try:
        await asyncio.wait_for(bus.connected.wait(), 5)
        reply = await host.post(f"/api/v1/live/{live_id}/replay", {"video_id": video_id, "offset_s": 5})
        assert reply.status == 201, reply.body
        await until(lambda: Change("video", video_id) in seen, timeout=5)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await bus_client.aclose()

    a, b, c = ids
    got = [(x["product_id"], x["start_s"], x["end_s"]) for x in reply.body["anchors"]]
    # Live offsets minus 5 s; C runs to the live's end (125) and is clipped to the video (100).
    assert got == [(a, 5.0, 35.0), (b, 15.0, 90.0), (c, 45.0, 100.0)]
    assert reply.body["replay_video_id"] == video_id and reply.body["skipped"] == []
    rows = await pool.fetch("SELECT code, surface, video_id, live_session_id, product_id, publisher_id, "
                            "start_s, end_s, status FROM anchors WHERE video_id = $1 ORDER BY start_s",
                            video_id)
    assert [(r["product_id"], r["start_s"], r["end_s"]) for r in rows] == got
    assert all(r["surface"] == "video" and r["live_session_id"] is None and r["status"] == "active"
               and r["publisher_id"] == host.account_id for r in rows)
    assert [r["code"] for r in rows] == [x["code"] for x in reply.body["anchors"]]

    again = await host.post(f"/api/v1/live/{live_id}/replay", {"video_id": video_id})
    assert again.status == 409 and again.body["error"]["code"] == "replay_attached"
    session = await host.get(f"/api/v1/live/{live_id}")
    assert session.body["replay_video_id"] == video_id


async def test_replay_clipping_drops_empty_ranges(make_account: AccountFactory, pool: asyncpg.Pool) -> None:
    host, ids = await seller_with_products(make_account, 3)
    live_id = await _known_live(host, ids, pool)
    short = await insert_video(pool, host.account_id, duration_s=30.0)
    reply = await host.post(f"/api/v1/live/{live_id}/replay", {"video_id": short})
    assert reply.status == 201, reply.body
    a, b, _ = ids
    assert [(x["product_id"], x["start_s"], x["end_s"]) for x in reply.body["anchors"]] == [
        (a, 10.0, 30.0), (b, 20.0, 30.0)]  # C starts at 50 s, after the 30 s recording: dropped


async def test_replay_recording_started_late_clips_the_start(make_account: AccountFactory, pool: asyncpg.Pool) -> None:
    host, ids = await seller_with_products(make_account, 3)
    live_id = await _known_live(host, ids, pool)
    video = await insert_video(pool, host.account_id, duration_s=200.0)
    reply = await host.post(f"/api/v1/live/{live_id}/replay", {"video_id": video, "offset_s": 45})
    _a, b, c = ids
    assert reply.status == 201, reply.body
    # A (10–40) ended before the recording began; B (20–95) starts at 0; C (50–130) → 5–85.
    assert [(x["product_id"], x["start_s"], x["end_s"]) for x in reply.body["anchors"]] == [
        (b, 0.0, 50.0), (c, 5.0, 85.0)]


async def test_replay_refusals(start_server: ServerFactory, make_account: AccountFactory, pool: asyncpg.Pool,
                               http: ClientSession) -> None:
    host, ids = await seller_with_products(make_account, 3)
    live_id = await _known_live(host, ids, pool)
    base = f"/api/v1/live/{live_id}/replay"
    stranger = await make_account("creator")
    theirs = await insert_video(pool, stranger.account_id)
    deleted = await insert_video(pool, host.account_id, status="deleted")
    for video_id in (theirs, deleted, 987654):
        reply = await host.post(base, {"video_id": video_id})
        assert reply.status == 422 and reply.body["error"]["details"][0]["code"] == "unknown_video"
    assert (await host.post(base, {"video_id": 1, "offset_s": -1})).status == 422
    assert (await host.post(base, {"video_id": 1, "extra": 1})).status == 422

    small = await start_server(max_anchors_per_video=2)
    limited = Api(http, str(small.make_url("")), host.token, host.account_id)
    video = await insert_video(pool, host.account_id)
    too_many = await limited.post(base, {"video_id": video})
    assert too_many.status == 422
    assert too_many.body["error"]["details"][0]["code"] == "too_many_anchors"
    assert await pool.fetchval("SELECT count(*) FROM anchors WHERE video_id = $1", video) == 0

    # A product delisted after the live is left out (and reported), the rest is created.
    assert (await host.delete(f"/api/v1/products/{ids[0]}")).status == 200
    reply = await limited.post(base, {"video_id": video})
    assert reply.status == 201, reply.body
    assert [x["product_id"] for x in reply.body["anchors"]] == ids[1:]
    assert reply.body["skipped"] == [{"product_id": ids[0], "reason": "product_delisted",
                                      "message": "product is delisted"}]
