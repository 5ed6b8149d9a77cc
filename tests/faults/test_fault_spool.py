"""Redis down and the click spool cannot take more: the redirect still answers 302 at once, every
event that cannot be kept is counted in /metrics and logged at ERROR (rate-limited, never silent),
and once Redis is back the spool is replayed and has room again.

Two ways to run out: the spool size limit (SHOPLINK_SPOOL_MAX_BYTES), and a real write error from
the kernel: a server process started under `prlimit --fsize` gets EFBIG from write(2) past the
limit, the same OSError path as a full disk (ENOSPC), with no mount and no root needed."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import asyncpg
import orjson
import pytest
from aiohttp import ClientSession
from redis.asyncio import Redis

from shoplink.keys import CLICK_WRITER, SETTINGS

from support.api import METRICS_AUTH, AccountFactory, Api, ServerFactory
from support.click_data import make_shop, video_anchor, wait_for_events
from support.click_server import ServeProcess
from support.services import RedisProcess
from support.wait import until

pytestmark = pytest.mark.slow
TEST_SECRET = "test-secret-key-0123456789abcdef"


def click_id(location: str) -> str:
    return location.rsplit("sl_click=", 1)[1].split("#")[0]


async def click_one_by_one(viewer: Api, code: str, count: int) -> list[str]:
    """Sequential clicks: each flush takes one or two events, so a limit cuts between batches."""
    ids = []
    for _ in range(count):
        reply = await viewer.get(f"/r/{code}")
        assert reply.status == 302
        ids.append(click_id(reply.headers["Location"]))
    return ids


async def test_full_spool_drops_are_counted_and_logged_and_it_recovers(
        make_account: AccountFactory, start_server: ServerFactory, http: ClientSession, pool: asyncpg.Pool,
        own_redis: RedisProcess, caplog: pytest.LogCaptureFixture) -> None:
    shop = await make_shop(await make_account("seller"))
    anchor_id, code, _ = await video_anchor(pool, shop)
    analyst = await make_account("analyst")
    # A flush never waits for more than a few events (while the writer backs off from Redis it
    # would otherwise collect them all: one batch past the limit, nothing spooled).
    server = await start_server(redis_url=own_redis.url, spool_max_bytes=4096, click_flush_batch=4)
    viewer = Api(http, str(server.make_url("")), None)
    writer = server.app[CLICK_WRITER]
    client = Redis.from_url(own_redis.url)
    try:
        await click_one_by_one(viewer, code, 1)  # cached; the event reaches Redis
        await until(lambda: writer.written == 1)
        own_redis.stop()
        with caplog.at_level(logging.INFO, logger="shoplink.delivery.writer"):
            answered = await click_one_by_one(viewer, code, 60)  # every one answered at once
            await until(lambda: writer.spooled + sum(writer.dropped.values()) == 60)
            dropped = writer.dropped["spool_full"]
            assert 0 < dropped < 60 and writer.spooled == 60 - dropped
            assert writer.dropped["spool_error"] == 0
            (spool,) = server.app[SETTINGS].spool_dir.glob("*.spool")
            assert 0 < spool.stat().st_size <= 4096
            metrics = (await viewer.get("/metrics", headers=METRICS_AUTH)).body
            assert f'shoplink_click_events_dropped_total{{reason="spool_full"}} {dropped}\n' in metrics
            assert f"shoplink_click_events_spooled_total {60 - dropped}\n" in metrics
            logged = [r for r in caplog.records if r.levelno == logging.ERROR and "dropped" in r.getMessage()]
            assert len(logged) == 1  # the first drop at once; the rest summed up later, not per event
            stats = await Api(http, str(server.make_url("")), analyst.token).get(f"/api/v1/stats/anchors/{anchor_id}")
            assert stats.status == 503 and stats.headers["Retry-After"] and stats.error_code == "unavailable"

            own_redis.start()  # empty (no persistence): only the replayed events will be there
            await client.aclose()
            client = Redis.from_url(own_redis.url)
            events = await wait_for_events(client, 60 - dropped, timeout=20)
            assert len(events) == 60 - dropped and all(e["replayed"] for e in events)
            assert {e["event_id"] for e in events} <= set(answered)
            await until(lambda: writer.spool_bytes == 0)
            # the log accounts for every dropped event
            logged = [r for r in caplog.records if r.levelno == logging.ERROR and "dropped" in r.getMessage()]
            assert sum(r.count for r in logged) == dropped and logged[-1].total == dropped  # type: ignore[attr-defined]

        more = await click_one_by_one(viewer, code, 20)  # the spool has room again; Redis takes them
        events = await wait_for_events(client, 60 - dropped + 20, timeout=20)
        assert {e["event_id"] for e in events} >= set(more)
        assert sum(writer.dropped.values()) == dropped
    finally:
        await client.aclose()


async def test_a_real_write_error_on_the_spool_is_counted_and_logged(
        make_account: AccountFactory, pool: asyncpg.Pool, database_url: str, own_redis: RedisProcess,
        http: ClientSession, tmp_path: Path) -> None:
    shop = await make_shop(await make_account("seller"))
    _, code, _ = await video_anchor(pool, shop)
    spool = tmp_path / "spool"
    limit = 8192
    serve = ServeProcess(database_url, own_redis.url, spool, TEST_SECRET, capture_stderr=True,
                         wrapper=("prlimit", f"--fsize={limit}"), click_flush_batch="4")  # as above
    serve.env["PYTHONDONTWRITEBYTECODE"] = "1"  # the file size limit is for the spool
    await asyncio.to_thread(serve.start)
    client = Redis.from_url(own_redis.url)
    try:
        viewer = Api(http, serve.url, None)
        await click_one_by_one(viewer, code, 1)
        assert len(await wait_for_events(client, 1)) == 1
        own_redis.stop()
        answered = await click_one_by_one(viewer, code, 60)

        async def settled() -> tuple[float, float]:
            spooled = await asyncio.to_thread(serve.metric, "shoplink_click_events_spooled_total")
            dropped = await asyncio.to_thread(serve.metric, "shoplink_click_events_dropped_total")
            return spooled, dropped

        async def all_settled() -> tuple[float, float] | None:
            spooled, dropped = await settled()
            return (spooled, dropped) if spooled + dropped >= 60 else None

        spooled, dropped = await until(all_settled, timeout=20, interval=0.02)
        assert spooled + dropped == 60 and spooled > 0 and dropped > 0
        (path,) = spool.glob("*.spool")
        data = path.read_bytes()
        assert len(data) <= limit and data.endswith(b"\n")  # a partly written batch was cut off again
        assert len(data.splitlines()) == spooled  # whole lines only, exactly the events counted as kept
        # the log line is read from the server's stderr by a thread: wait for it
        errors = await until(lambda: [orjson.loads(line) for line in serve.stderr_lines
                                      if '"level":"error"' in line and "spool cannot be written" in line])
        assert errors and "File too large" in errors[0]["error"]

        own_redis.start()
        await client.aclose()
        client = Redis.from_url(own_redis.url)
        events = await wait_for_events(client, int(spooled), timeout=20)
        assert len(events) == spooled and {e["event_id"] for e in events} <= set(answered)
    finally:
        serve.kill()
        await client.aclose()
