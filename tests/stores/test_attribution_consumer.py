"""The `attribution` consumer group: plan clicks from the streams into PostgreSQL, idempotent,
acknowledged only after commit, with dead consumers' entries reclaimed."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import orjson
from redis.asyncio import Redis
from redis.asyncio.connection import Connection

from shoplink.affiliates.attribution import GROUP, AttributionConsumer
from shoplink.resp import pack_ids
from shoplink.streams import stream_key

from support.affiliate_data import T0, click_event, ms, stream_for, xadd_click
from support.click_data import xrange
from support.wait import until

SHARDS = 4


def _event(**kw: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"anchor_id": 5, "product_id": 7, "shop_id": 3, "creator_id": 11,
                              "plan_id": 2, "rate_bp": 1250, "ts_ms": ms(T0)}
    values.update(kw)
    return click_event(**values)


async def _rows(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    async with pool.acquire() as con:
        return await con.fetch("SELECT * FROM attributed_clicks ORDER BY event_id")


async def _pending(redis: Redis, key: str) -> int:
    info = await redis.xpending(key, GROUP)
    return int(info["pending"])


def _consumer(redis: Redis, pool: asyncpg.Pool, name: str, idle_ms: int = 60_000) -> AttributionConsumer:
    return AttributionConsumer(redis, pool, shards=SHARDS, name=name, reclaim_idle_ms=idle_ms,
                               block_ms=10)


async def test_stores_plan_clicks_with_their_snapshot(redis: Redis, pool: asyncpg.Pool) -> None:
    consumer = _consumer(redis, pool, "a")
    await consumer.ensure_group(1)
    plan_click = _event(anchor_id=5, ua_class="bot")
    no_plan = click_event(anchor_id=9, product_id=7, shop_id=3, creator_id=11, plan_id=None,
                          ts_ms=ms(T0))
    ended = _event(anchor_id=13, rate_bp=None, source="plan_ended")
    for event in (plan_click, no_plan, ended):
        await xadd_click(redis, event, SHARDS)
    await redis.xadd(stream_key(1), {"e": b"{not json"})
    entries = await consumer.read(1)
    assert len(entries) == 4
    result = await consumer.process(1, entries)
    assert (result.stored, result.skipped, result.malformed, result.duplicates) == (2, 1, 1, 0)
    rows = {r["event_id"]: r for r in await _rows(pool)}
    assert set(rows) == {plan_click["event_id"], ended["event_id"]}
    row = rows[plan_click["event_id"]]
    assert (row["plan_id"], row["creator_id"], row["product_id"], row["shop_id"]) == (2, 11, 7, 3)
    assert (row["viewer"], row["ua_class"], row["rate_bp"], row["rate_source"]) == (
        plan_click["viewer"], "bot", 1250, "plan_rate")
    assert row["ts"] == T0
    assert (rows[ended["event_id"]]["rate_bp"], rows[ended["event_id"]]["rate_source"]) == (
        None, "plan_ended")
    assert await _pending(redis, stream_key(1)) == 0  # everything acknowledged, even the junk


async def test_same_event_twice_is_stored_once(redis: Redis, pool: asyncpg.Pool) -> None:
    consumer = _consumer(redis, pool, "a")
    await consumer.ensure_group(1)
    event = _event()
    await xadd_click(redis, event, SHARDS)
    await xadd_click(redis, {**event, "replayed": True}, SHARDS)  # a spool replay: new stream id
    result = await consumer.process(1, await consumer.read(1))
    assert (result.stored, result.duplicates) == (1, 1)
    await xadd_click(redis, event, SHARDS)  # and once more in a later batch
    result = await consumer.process(1, await consumer.read(1))
    assert (result.stored, result.duplicates) == (0, 1)
    assert len(await _rows(pool)) == 1


async def test_crash_between_insert_and_ack_is_redelivered_and_not_doubled(
        redis: Redis, pool: asyncpg.Pool) -> None:
    key = stream_for(5, SHARDS)
    dead = _consumer(redis, pool, "dead")
    await dead.ensure_group(1)
    events = [_event() for _ in range(3)]
    for event in events:
        await xadd_click(redis, event, SHARDS)
    entries = await dead.read(1)
    await dead.store(entries)  # committed ... and then the process dies before XACK
    assert await _pending(redis, key) == 3

    # the same consumer restarting first redoes its own pending entries
    again = await dead.read(1, pending=True)
    assert [e[0] for e in again] == [e[0] for e in entries]

    # another consumer reclaims them once they have been idle long enough
    alive = _consumer(redis, pool, "alive", idle_ms=60_000)
    assert await alive.reclaim(1) == []  # not idle for a minute yet
    alive.reclaim_idle_ms = 1
    await asyncio.sleep(0.01)  # a clock: the entries have been idle for longer than 1 ms
    claimed = await alive.reclaim(1)
    assert len(claimed) == 3
    result = await alive.process(1, claimed)
    assert (result.stored, result.duplicates) == (0, 3)
    assert await _pending(redis, key) == 0
    assert len(await _rows(pool)) == 3


async def test_running_consumer_reads_every_shard_and_survives_a_flush(
        redis: Redis, pool: asyncpg.Pool) -> None:
    consumer = _consumer(redis, pool, "runner")
    task = asyncio.create_task(consumer.run())
    try:
        events = [_event(anchor_id=n) for n in range(8)]  # two per shard
        for event in events:
            await xadd_click(redis, event, SHARDS)
        await _wait_rows(pool, 8)
        await redis.flushall()  # streams and group vanish: the loop recreates the group
        late = _event(anchor_id=3)
        await xadd_click(redis, late, SHARDS)
        await _wait_rows(pool, 9)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    stored = {r["event_id"] for r in await _rows(pool)}
    assert stored == {e["event_id"] for e in [*events, late]}
    raw = await xrange(redis, stream_key(3))
    assert orjson.loads(raw[0][1][b"e"])["event_id"] == late["event_id"]


async def _wait_rows(pool: asyncpg.Pool, count: int) -> None:
    async def stored() -> bool:
        return len(await _rows(pool)) >= count

    await until(stored, interval=0.02)


async def test_xack_is_encoded_as_redis_py_would_and_acknowledges(redis: Redis) -> None:
    key = stream_key(0)
    ids = [b"1-0", b"1700000000000-12", b"9" * 20 + b"-1"]
    packed = b"".join(Connection().pack_command("XACK", key, GROUP, *ids))
    assert pack_ids([b"XACK", key, GROUP], ids) == packed
    await redis.xgroup_create(key, GROUP, id="0", mkstream=True)
    for _ in range(3):
        await redis.xadd(key, {"e": b"{}"})
    consumer = AttributionConsumer(redis, None, shards=1)  # type: ignore[arg-type]  # no PostgreSQL needed
    entries = await consumer.read(0, wait=False)
    assert len(entries) == 3 and (await redis.xpending(key, GROUP))["pending"] == 3
    await consumer.ack(0, entries)
    assert (await redis.xpending(key, GROUP))["pending"] == 0
