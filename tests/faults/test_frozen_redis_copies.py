"""A frozen Redis (SIGSTOP of a real redis-server) under a steady click load: the writer's sends
time out again and again, and each timed-out send used to be sent again from the spool, so Redis
applied every copy once it ran again (68 events written 8-9 times in issue 17). A send without an
answer is now uncertain: nothing of it is re-sent before the streams are looked up (after the
connection that sent it is killed). Result: no copy at all on one Redis, and at most one extra
copy per outage when the server refuses CLIENT (an ACL without it)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from pathlib import Path

import orjson
from redis.asyncio import Redis

from shoplink.delivery.spool import Mark, SpoolFile
from shoplink.delivery.writer import ClickWriter
from shoplink.ids import new_ulid
from shoplink.streams import stream_key

from support.click_data import stream_events
from support.services import RedisProcess
from support.wait import until


def event(n: int) -> bytes:
    return orjson.dumps({"event_id": new_ulid(), "n": n})


async def frozen_outage(proc: RedisProcess, writer: ClickWriter, first: int, count: int) -> None:
    """`count` events at a steady pace while Redis is frozen for about 2 s (many send timeouts)."""
    assert proc.proc is not None
    os.kill(proc.proc.pid, signal.SIGSTOP)
    try:
        for n in range(first, first + count):
            writer.record(n % 4, event(n))
            await asyncio.sleep(0.01)  # paces the load (about 100 clicks/s), as in the issue
    finally:
        os.kill(proc.proc.pid, signal.SIGCONT)


async def test_a_frozen_redis_never_gets_a_second_copy(own_redis: RedisProcess, tmp_path: Path) -> None:
    client = Redis.from_url(own_redis.url)
    writer = ClickWriter(own_redis.url, tmp_path, timeout_s=0.1, batch_size=20)
    await writer.start()
    try:
        writer.record(0, event(0))
        await until(lambda: writer.written == 1)
        await frozen_outage(own_redis, writer, 1, 200)
        await until(lambda: not writer.spool_pending and writer.buffered == 0, timeout=20)
        writer.record(1, event(201))  # back to shipping from memory

        async def all_in() -> bool:
            return len({e["n"] for e in await stream_events(client)}) == 202

        await until(all_in, timeout=20)
        await until(lambda: not writer.spool_pending and writer.buffered == 0)
    finally:
        await writer.close()
        events = await stream_events(client)
        await client.aclose()
    counts = Counter(e["event_id"] for e in events)
    assert sorted(e["n"] for e in events) == list(range(202))  # each event exactly once
    assert max(counts.values()) == 1
    assert writer.spooled > 0  # the outage did go through the file


async def test_without_client_kill_one_extra_copy_at_most(own_redis: RedisProcess, tmp_path: Path) -> None:
    """A user whose ACL refuses CLIENT: the old connection cannot be killed, so a batch it sent
    may still be applied after the lookup; never more than once more."""
    admin = Redis.from_url(own_redis.url)
    await admin.execute_command("ACL", "SETUSER", "clicks", "on", ">clicks-pw", "~*", "+@all", "-client")  # type: ignore[no-untyped-call]
    url = f"redis://clicks:clicks-pw@127.0.0.1:{own_redis.port}/0"
    writer = ClickWriter(url, tmp_path, timeout_s=0.1, batch_size=20)
    await writer.start()
    try:
        writer.record(0, event(0))
        await until(lambda: writer.written == 1)
        await frozen_outage(own_redis, writer, 1, 200)
        await until(lambda: not writer.spool_pending and writer.buffered == 0, timeout=20)
    finally:
        await writer.close()
        events = await stream_events(admin)
        await admin.aclose()
    counts = Counter(e["event_id"] for e in events)
    assert {e["n"] for e in events} == set(range(201))
    assert max(counts.values()) <= 2


async def test_a_killed_writers_uncertain_batch_is_looked_up_not_resent(
        own_redis: RedisProcess, tmp_path: Path) -> None:
    """The spool of a process killed with a batch in flight: its mark says which events were
    sent without an answer; the next writer sends only those the streams do not hold."""
    client = Redis.from_url(own_redis.url)
    (since_s, since_us) = await client.time()
    records = [(n % 4, event(n)) for n in range(30)]
    dead = SpoolFile.create(tmp_path)
    dead.append(records)
    for shard, payload in records[:20]:  # Redis applied the first 20 before the process died
        await client.xadd(stream_key(shard), {"e": payload})
    dead.write_mark(Mark(shipped=0, sent=dead.size, since_ms=since_s * 1000 + since_us // 1000))
    dead.close()  # the process is gone: its lock with it
    writer = ClickWriter(own_redis.url, tmp_path)
    await writer.start()
    try:
        await until(lambda: not writer.spool_pending)
    finally:
        await writer.close()
        events = await stream_events(client)
        await client.aclose()
    assert sorted(e["n"] for e in events) == list(range(30))
    assert writer.settled == 20 and writer.replayed == 10
    assert not list(tmp_path.glob("*.spool"))


async def test_after_a_redis_restart_no_unrelated_client_is_killed(own_redis: RedisProcess, tmp_path: Path) -> None:
    """Client ids start again when Redis restarts: the CLIENT ID in a dead writer's mark may now
    name somebody else's connection. The lookup must not kill it (the old connection died with
    the old run anyway)."""
    client = Redis.from_url(own_redis.url)
    (since_s, since_us) = await client.time()
    await client.aclose()
    own_redis.stop()
    own_redis.start()  # empty, and client ids count from 1 again
    bystander = Redis.from_url(own_redis.url, single_connection_client=True)
    bystander_id = await bystander.client_id()
    records = [(n % 4, event(n)) for n in range(10)]
    dead = SpoolFile.create(tmp_path)
    dead.append(records)
    dead.write_mark(Mark(shipped=0, sent=dead.size, since_ms=since_s * 1000 + since_us // 1000,
                         client_id=bystander_id))
    dead.close()
    admin = Redis.from_url(own_redis.url)
    writer = ClickWriter(own_redis.url, tmp_path)
    await writer.start()
    try:
        await until(lambda: not writer.spool_pending)
        ids = [c["id"] for c in await admin.client_list()]
        assert str(bystander_id) in [str(i) for i in ids]  # still connected
        assert sorted(e["n"] for e in await stream_events(admin)) == list(range(10))
    finally:
        await writer.close()
        await bystander.aclose()
        await admin.aclose()
