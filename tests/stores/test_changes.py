"""The change bus reaches other instances through Redis; after a reconnect listeners forget all."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from shoplink.changes import EVERYTHING, Change, ChangeBus

from support.services import RedisProcess


async def _wait_for(items: list[Change], wanted: Change, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while wanted not in items:
            await asyncio.sleep(0.01)


async def test_change_reaches_other_instance_not_echoed_to_self(redis_proc: RedisProcess) -> None:
    a_client, b_client = Redis.from_url(redis_proc.url), Redis.from_url(redis_proc.url)
    a, b = ChangeBus(a_client), ChangeBus(b_client)
    seen_a: list[Change] = []
    seen_b: list[Change] = []
    a.subscribe(seen_a.append)
    b.subscribe(seen_b.append)
    tasks = [asyncio.create_task(a.run()), asyncio.create_task(b.run())]
    try:
        await asyncio.wait_for(asyncio.gather(a.connected.wait(), b.connected.wait()), 5)
        await a.publish(Change("product", 7))
        await _wait_for(seen_b, Change("product", 7))
        await asyncio.sleep(0.05)
        assert seen_a == [Change("product", 7)]  # applied locally once, not echoed back
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await a_client.aclose()
        await b_client.aclose()


async def test_reconnect_flushes_listeners() -> None:
    proc = RedisProcess()
    proc.start()
    client = Redis.from_url(proc.url)
    bus = ChangeBus(client)
    seen: list[Change] = []
    bus.subscribe(seen.append)
    task = asyncio.create_task(bus.run())
    try:
        await asyncio.wait_for(bus.connected.wait(), 5)
        proc.stop()
        proc.start()
        await _wait_for(seen, EVERYTHING, timeout=15)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()
        proc.cleanup()
