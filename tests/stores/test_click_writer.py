"""ClickWriter against a real redis-server: batches land intact, refused writes and a stalled
Redis spill to the spool and come back, and a full buffer spills instead of growing."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import orjson
from redis.asyncio import Redis

from shoplink.delivery.writer import ClickWriter
from shoplink.ids import new_ulid

from support.click_data import stream_events, xrange
from support.services import RedisProcess
from support.wait import until


def event(n: int) -> bytes:
    return orjson.dumps({"event_id": new_ulid(), "n": n})


async def test_batches_are_written_in_order_per_shard(redis_proc: RedisProcess, redis: Redis,
                                                      tmp_path: Path) -> None:
    writer = ClickWriter(redis_proc.url, tmp_path, batch_size=50)
    await writer.start()
    try:
        for n in range(500):
            writer.record(n % 4, event(n))
        await until(lambda: writer.written == 500)
    finally:
        await writer.close()
    for shard in range(4):
        entries = await xrange(redis, f"shoplink:clicks:{{{shard}}}")
        assert [orjson.loads(f[b"e"])["n"] for _, f in entries] == list(range(shard, 500, 4))
    assert writer.spooled == 0 and not list(tmp_path.glob("*.spool"))


async def test_refused_writes_are_spooled_and_replayed(redis_proc: RedisProcess, redis: Redis,
                                                       tmp_path: Path) -> None:
    await redis.set("shoplink:clicks:{1}", "not a stream")  # XADD answers WRONGTYPE
    writer = ClickWriter(redis_proc.url, tmp_path)
    await writer.start()
    try:
        for n in range(8):
            writer.record(n % 2, event(n))
        await until(lambda: writer.spooled == 4 and writer.written == 4)
        assert writer.write_errors >= 4
        await redis.delete("shoplink:clicks:{1}")
        await until(lambda: writer.replayed == 4)
        writer.record(1, event(8))
        await until(lambda: writer.written == 9)
    finally:
        await writer.close()
    events = await stream_events(redis)
    assert sorted(e["n"] for e in events) == list(range(9))
    assert [e["n"] for e in events if e.get("replayed")] == [1, 3, 5, 7]


async def test_a_refusal_in_the_middle_of_a_replay_writes_nothing_twice(
        redis_proc: RedisProcess, redis: Redis, tmp_path: Path) -> None:
    """Replayed lines that fail are not always a suffix of the batch (one shard refused, or on
    a Redis Cluster one node down): the spool must not skip the failed ones nor rewrite the
    ones written after them."""
    await redis.set("shoplink:clicks:{1}", "not a stream")  # XADD answers WRONGTYPE
    writer = ClickWriter(redis_proc.url, tmp_path)
    await writer.start()
    try:
        for n in range(8):
            writer.record(n % 2, event(n))
        await until(lambda: writer.spooled == 4 and writer.written == 4)
        for n in range(8, 16):  # behind the spool: spooled too, then replayed with shard 1's
            writer.record(n % 2, event(n))
        await until(lambda: writer.written >= 8 and writer.write_errors >= 16)  # replays failed
        await redis.delete("shoplink:clicks:{1}")
        await until(lambda: not writer.spool_pending)
    finally:
        await writer.close()
    events = await stream_events(redis)
    assert sorted(e["n"] for e in events) == list(range(16))


async def test_stalled_redis_spills_and_nothing_is_lost(tmp_path: Path) -> None:
    proc = RedisProcess()
    proc.start()
    client = Redis.from_url(proc.url)
    writer = ClickWriter(proc.url, tmp_path, timeout_s=0.2, batch_size=10, buffer_max=100)
    await writer.start()
    try:
        writer.record(0, event(-1))
        await until(lambda: writer.written == 1)
        assert proc.proc is not None
        os.kill(proc.proc.pid, signal.SIGSTOP)  # Redis hangs: connections open, no answers
        for n in range(300):  # more than buffer_max while Redis does not answer
            writer.record(n % 4, event(n))
            if n % 50 == 0:  # pace the load: the writer's sends time out (0.2 s) meanwhile
                await asyncio.sleep(0.05)
        assert writer.buffered <= 100
        await until(lambda: writer.spooled > 0)
        os.kill(proc.proc.pid, signal.SIGCONT)
        await until(lambda: not writer.spool_pending and writer.buffered == 0, timeout=15)
    finally:
        if proc.proc is not None:
            os.kill(proc.proc.pid, signal.SIGCONT)
        await writer.close()
        events = await stream_events(client)
        await client.aclose()
        proc.cleanup()
    ids = [e["event_id"] for e in events]
    # A batch Redis applied after the timeout is written again from the spool: same event_id.
    assert sorted({e["n"] for e in events}) == [-1, *range(300)]
    assert len(set(ids)) == 301 and writer.spooled > 0


async def test_a_replay_answered_with_errors_in_between_loses_nothing(
        redis_proc: RedisProcess, redis: Redis, tmp_path: Path) -> None:
    """A replayed pipeline whose replies mix errors and successes (Redis still loading its data
    after a restart answers -LOADING to the first commands and OK to the rest; here: a WRONGTYPE
    key for shard 1) must not mark the failed lines as replayed: the spool moves on only past the
    leading successes, the rest is sent again (duplicates by event_id, never a loss)."""
    lines = [(n % 2, orjson.dumps({"event_id": new_ulid(), "n": n})) for n in range(40)]
    (tmp_path / "clicks-1-dead.spool").write_bytes(b"".join(b"%d %s\n" % line for line in lines))
    await redis.set("shoplink:clicks:{1}", "not a stream")  # every shard-1 XADD fails
    writer = ClickWriter(redis_proc.url, tmp_path)
    await writer.start()  # claims the file left by the "dead" process and replays it
    try:
        await until(lambda: writer.write_errors >= 20)
        await redis.delete("shoplink:clicks:{1}")
        await until(lambda: not writer.spool_pending)
    finally:
        await writer.close()
    events = await stream_events(redis)
    assert {e["n"] for e in events} == set(range(40))
    assert all(e["replayed"] for e in events)
