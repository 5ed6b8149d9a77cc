"""The change bus reaches other instances through Redis; after a reconnect listeners forget all."""

from __future__ import annotations

import asyncio
import logging

import pytest
from redis.asyncio import Redis

from shoplink.changes import CHANNEL, EVERYTHING, Change, ChangeBus

from support.services import RedisProcess
from support.wait import until


async def test_change_reaches_other_instance_not_echoed_to_self(
        redis_proc: RedisProcess, caplog: pytest.LogCaptureFixture) -> None:
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
        await until(lambda: Change("product", 7) in seen_b, timeout=5)
        # Redis delivers a channel's messages in order: once `a` has read a message published
        # after its own, an echo of its own would have reached its listeners already.
        with caplog.at_level(logging.WARNING, logger="shoplink.changes"):
            await a_client.publish(CHANNEL, b"a marker, not a change")  # both buses log and drop it
            await until(lambda: [r.getMessage() for r in caplog.records].count(
                "malformed change message ignored") == 2, timeout=5)
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
        await until(lambda: EVERYTHING in seen, timeout=15)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()
        proc.cleanup()
