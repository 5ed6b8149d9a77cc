"""kill -9 of a real `shoplink serve` under load: every click that was answered is in the
streams afterwards, exactly once (the journal: docs/clicks.md, "Delivery contract").

The server flushes every 200 ms, so at the kill a fifth of a second of answered clicks exists only
in its buffer and its spool file; the next start claims the file and ships what was not shipped.
A click whose request was cut by the kill (no answer) may or may not be in the streams: its event
can be on file already when the process dies before the 302 is written."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from pathlib import Path

import aiohttp
import asyncpg
from redis.asyncio import Redis

from support.api import AccountFactory
from support.click_data import make_shop, stream_events, video_anchor
from support.click_server import ServeProcess
from support.services import RedisProcess
from support.wait import until

TEST_SECRET = "test-secret-key-0123456789abcdef"
CLIENTS = 8  # concurrent viewers, each clicking as fast as answered (a bounded loopback load)


async def load(url: str, code: str, answered: list[str], cut: list[int], stop: asyncio.Event) -> None:
    """Click until `stop` or until the server is gone; answered ids and cut requests."""
    async with aiohttp.ClientSession() as session:
        while not stop.is_set():
            try:
                async with session.get(f"{url}/r/{code}", allow_redirects=False) as reply:
                    location = reply.headers["Location"]
                    assert reply.status == 302
                    answered.append(location.rsplit("sl_click=", 1)[1].split("#")[0])
            except (TimeoutError, aiohttp.ClientError):
                cut.append(1)
                return


async def test_kill9_under_load_loses_no_answered_click(
        make_account: AccountFactory, pool: asyncpg.Pool, database_url: str, own_redis: RedisProcess,
        tmp_path: Path) -> None:
    shop = await make_shop(await make_account("seller"))
    _, code, _ = await video_anchor(pool, shop)
    spool = tmp_path / "spool"
    killed = ServeProcess(database_url, own_redis.url, spool, TEST_SECRET, click_flush_ms="200")
    await asyncio.to_thread(killed.start)
    restarted = ServeProcess(database_url, own_redis.url, spool, TEST_SECRET)
    client = Redis.from_url(own_redis.url)
    answered: list[str] = []
    cut: list[int] = []
    stop = asyncio.Event()
    try:
        viewers = [asyncio.create_task(load(killed.url, code, answered, cut, stop)) for _ in range(CLIENTS)]
        await until(lambda: len(answered) >= 1500, timeout=60, interval=0.01)
        killed.kill()  # SIGKILL under load: no shutdown flush
        await asyncio.wait_for(asyncio.gather(*viewers), 30)
        assert sum(cut) == CLIENTS  # every viewer saw the server go away mid-load
        in_file = sum(len(p.read_bytes().splitlines()) for p in spool.glob("*.spool"))
        assert in_file > 0  # answered clicks the killed process had not shipped yet

        await asyncio.to_thread(restarted.start)  # claims the file, ships what is not in Redis

        async def shipped() -> list[dict[str, object]] | None:
            events = await stream_events(client)
            ids = {e["event_id"] for e in events}
            return events if ids >= set(answered) and not list(spool.glob("*.spool")) else None

        events = await until(shipped, timeout=30, interval=0.1)
    finally:
        stop.set()
        killed.kill()
        restarted.kill()
        with contextlib.suppress(Exception):
            await client.aclose()
    counts = Counter(e["event_id"] for e in events)
    assert not [i for i, n in counts.items() if n > 1]  # no event twice
    assert set(answered) <= set(counts)  # every answered click, exactly once
    # Beyond the answered ones: only clicks whose request the kill cut (on file, not answered).
    assert len(counts) - len(answered) <= sum(cut)
