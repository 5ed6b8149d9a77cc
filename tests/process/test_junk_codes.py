"""A burst of 20,000 requests for random unknown codes on /r/ against a real `shoplink serve`
(bounded, loopback): all answered 404, Redis does not grow (unknown codes write no event; they are
counted in /metrics), and PostgreSQL sees at most the resolver's paced miss loads
(clicks/resolver.py: 1 + T / MISS_LOAD_GAP_S + N / LOAD_BATCH queries). Before: +20,046 stream
entries, +11.5 MB of Redis and 1,703 queries for the same burst (issue 17)."""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path

import aiohttp
import pytest
from redis.asyncio import Redis

from shoplink.clicks.resolver import LOAD_BATCH, MISS_LOAD_GAP_S

from support.click_server import ServeProcess
from support.services import RedisProcess

pytestmark = pytest.mark.slow
TEST_SECRET = "test-secret-key-0123456789abcdef"
REQUESTS = 20_000
CLIENTS = 125  # a miss waits for its batch (at most MISS_LOAD_GAP_S): many clients, short burst
REDIS_GROWTH_MAX = 256 * 1024  # bytes: allocator noise and client buffers, no data


async def burst(session: aiohttp.ClientSession, url: str, count: int, statuses: list[int]) -> None:
    for _ in range(count):
        async with session.get(f"{url}/r/{secrets.token_urlsafe(9)}", allow_redirects=False) as reply:
            await reply.read()
            statuses.append(reply.status)


async def test_a_junk_burst_grows_neither_redis_nor_postgres_load(
        database_url: str, own_redis: RedisProcess, tmp_path: Path) -> None:
    serve = ServeProcess(database_url, own_redis.url, tmp_path / "spool", TEST_SECRET)
    await asyncio.to_thread(serve.start)
    client = Redis.from_url(own_redis.url)
    try:
        await asyncio.sleep(0.5)  # lets start-up writes (consumer groups, subscriptions) settle
        keys_before = await client.dbsize()
        memory_before = (await client.info("memory"))["used_memory"]
        loads_before = await asyncio.to_thread(serve.metric, "shoplink_click_cache_loads_total")
        statuses: list[int] = []
        started = time.monotonic()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CLIENTS)) as session:
            await asyncio.gather(*(burst(session, serve.url, REQUESTS // CLIENTS, statuses)
                                   for _ in range(CLIENTS)))
        elapsed = time.monotonic() - started
        assert len(statuses) == REQUESTS and set(statuses) == {404}

        not_found = await asyncio.to_thread(serve.metric, 'shoplink_click_redirects_total{outcome="not_found"}')
        assert not_found == REQUESTS  # counted, not streamed
        written = await asyncio.to_thread(serve.metric, "shoplink_click_events_written_total")
        assert written == 0
        streamed = sum([await client.xlen(f"shoplink:clicks:{{{n}}}") for n in range(4)])
        assert streamed == 0 and await client.dbsize() == keys_before
        assert (await client.info("memory"))["used_memory"] - memory_before < REDIS_GROWTH_MAX

        loads = await asyncio.to_thread(serve.metric, "shoplink_click_cache_loads_total") - loads_before
        print(f"junk burst: {REQUESTS} requests in {elapsed:.1f} s, {loads:.0f} resolver queries")
        assert loads <= 1 + elapsed / MISS_LOAD_GAP_S + REQUESTS / LOAD_BATCH, (loads, elapsed)
    finally:
        serve.kill()
        await client.aclose()
