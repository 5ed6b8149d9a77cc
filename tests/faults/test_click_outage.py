"""Never lose a click: Redis outages, SIGTERM and crashes, with real redis-server and real
server processes. Every answered click ends up in the stream exactly once (or, only where the
design allows it, as a duplicate with the same event_id)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
import jsonschema
from aiohttp import ClientSession
from redis.asyncio import Redis

from shoplink.keys import CLICK_WRITER, SETTINGS
from shoplink.paths import SCHEMAS_DIR

from support.api import AccountFactory, Api, ServerFactory
from support.click_data import make_shop, video_anchor, wait_for_events
from support.click_server import ServeProcess
from support.services import RedisProcess
from support.wait import until

SCHEMA = json.loads((SCHEMAS_DIR / "click_event.schema.json").read_text())
TEST_SECRET = "test-secret-key-0123456789abcdef"


def click_id(location: str) -> str:
    return location.rsplit("sl_click=", 1)[1].split("#")[0]


async def clicks(api: Api, code: str, count: int) -> list[str]:
    replies = await asyncio.gather(*(api.get(f"/r/{code}") for _ in range(count)))
    assert [r.status for r in replies] == [302] * count
    return [click_id(r.headers["Location"]) for r in replies]


async def test_redis_outage_spools_and_replays_every_click(
        make_account: AccountFactory, start_server: ServerFactory, http: ClientSession, pool: asyncpg.Pool,
        own_redis: RedisProcess) -> None:
    shop = await make_shop(await make_account("seller"))
    _, code, _ = await video_anchor(pool, shop)
    server = await start_server(redis_url=own_redis.url)
    viewer = Api(http, str(server.make_url("")), None)
    client = Redis.from_url(own_redis.url)
    try:
        before = await clicks(viewer, code, 30)
        assert len(await wait_for_events(client, 30)) == 30
        await client.save()  # this test redis has no AOF: keep the first 30 across the kill
        own_redis.stop()  # SIGKILL

        during = await clicks(viewer, code, 40)  # all answered at once, Redis or not
        writer = server.app[CLICK_WRITER]
        await until(lambda: writer.spooled >= 40)
        assert writer.spooled == 40 and not writer.redis_ok

        own_redis.start()  # same port, same data directory
        await client.aclose()
        client = Redis.from_url(own_redis.url)
        events = await wait_for_events(client, 70, timeout=20)
        assert len(events) == 70
        for event in events:
            jsonschema.validate(event, SCHEMA)
        assert sorted(e["event_id"] for e in events) == sorted(before + during)
        replayed = {e["event_id"] for e in events if e.get("replayed")}
        assert replayed == set(during)
        assert writer.spool_bytes == 0 and writer.replayed == 40
        assert not [p for p in server.app[SETTINGS].spool_dir.glob("*.spool") if p.stat().st_size]
    finally:
        await client.aclose()


async def test_sigterm_flushes_everything_answered(make_account: AccountFactory, pool: asyncpg.Pool, database_url: str,
                                                   own_redis: RedisProcess, http: ClientSession,
                                                   tmp_path: Path) -> None:
    shop = await make_shop(await make_account("seller"))
    _, code, _ = await video_anchor(pool, shop)
    # A flush interval far longer than the test: only the shutdown flush can write the events.
    serve = ServeProcess(database_url, own_redis.url, tmp_path / "spool", TEST_SECRET,
                         click_flush_ms="60000", click_flush_batch="100000")
    await asyncio.to_thread(serve.start)
    client = Redis.from_url(own_redis.url)
    try:
        answered = await clicks(Api(http, serve.url, None), code, 60)
        # still buffered (consumer groups may already have created the empty streams)
        assert sum([await client.xlen(f"shoplink:clicks:{{{n}}}") for n in range(4)]) == 0
        assert await asyncio.to_thread(serve.terminate) == 0
        events = await wait_for_events(client, 60, timeout=5)
        assert sorted(e["event_id"] for e in events) == sorted(answered)
        assert not [p for p in (tmp_path / "spool").glob("*.spool") if p.stat().st_size]
    finally:
        serve.kill()
        await client.aclose()


async def test_sigterm_with_redis_down_spools_then_next_start_replays(
        make_account: AccountFactory, pool: asyncpg.Pool, database_url: str, own_redis: RedisProcess,
        http: ClientSession, tmp_path: Path) -> None:
    shop = await make_shop(await make_account("seller"))
    _, code, _ = await video_anchor(pool, shop)
    spool = tmp_path / "spool"
    first = ServeProcess(database_url, own_redis.url, spool, TEST_SECRET, click_flush_ms="60000",
                         click_flush_batch="100000", click_redis_timeout_s="0.3")
    await asyncio.to_thread(first.start)
    client = Redis.from_url(own_redis.url)
    second = ServeProcess(database_url, own_redis.url, spool, TEST_SECRET)
    try:
        answered = await clicks(Api(http, first.url, None), code, 25)
        own_redis.stop()
        assert await asyncio.to_thread(first.terminate) == 0
        files = [p for p in spool.glob("*.spool") if p.stat().st_size]
        assert len(files) == 1 and len(files[0].read_bytes().splitlines()) == 25
        own_redis.start()
        await client.aclose()
        client = Redis.from_url(own_redis.url)
        await asyncio.to_thread(second.start)
        events = await wait_for_events(client, 25, timeout=20)
        assert sorted(e["event_id"] for e in events) == sorted(answered)
        assert all(e["replayed"] is True for e in events)
    finally:
        first.kill()
        second.kill()
        await client.aclose()


async def test_spool_left_by_a_crash_is_replayed_at_the_next_start(
        make_account: AccountFactory, pool: asyncpg.Pool, database_url: str, own_redis: RedisProcess,
        http: ClientSession, tmp_path: Path) -> None:
    shop = await make_shop(await make_account("seller"))
    _, code, _ = await video_anchor(pool, shop)
    spool = tmp_path / "spool"
    crashing = ServeProcess(database_url, own_redis.url, spool, TEST_SECRET, click_redis_timeout_s="0.3")
    await asyncio.to_thread(crashing.start)
    client = Redis.from_url(own_redis.url)
    restarted = ServeProcess(database_url, own_redis.url, spool, TEST_SECRET)
    try:
        viewer = Api(http, crashing.url, None)
        await clicks(viewer, code, 1)  # the anchor is cached before Redis goes away
        await wait_for_events(client, 1)
        own_redis.stop()
        answered = await clicks(viewer, code, 30)

        async def spooled() -> bool:
            return await asyncio.to_thread(crashing.metric, "shoplink_click_events_spooled_total") >= 30

        await until(spooled, timeout=20, interval=0.02)
        crashing.kill()  # SIGKILL: no shutdown, the spool stays behind
        assert sum(len(p.read_bytes().splitlines()) for p in spool.glob("*.spool")) == 30

        own_redis.start()  # an empty Redis (no persistence): only replayed events will be there
        await client.aclose()
        client = Redis.from_url(own_redis.url)
        await asyncio.to_thread(restarted.start)
        events = await wait_for_events(client, 30, timeout=20)
        assert sorted(e["event_id"] for e in events) == sorted(answered)
        assert all(e["replayed"] is True for e in events)
        for event in events:
            jsonschema.validate(event, SCHEMA)
        await until(lambda: not list(spool.glob("*.spool")))  # the claimed file is removed once replayed
        assert not list(spool.glob("*.spool"))
    finally:
        crashing.kill()
        restarted.kill()
        await client.aclose()
