"""ClickWriter.close() with a short deadline while Redis refuses or stalls: every recorded event
ends up in Redis or in the spool (never neither), with a real redis-server (and the real 3-node
cluster): error replies (OOM under `maxmemory` + `noeviction`, NOPERM from an ACL), a Redis
stopped with SIGSTOP, and a write pause (`CLIENT PAUSE WRITE`) that holds a batch half answered.

The case that lost events: the deadline cancels a send after Redis answered part of the batch
with errors and before it answered the rest; the cancelled send kept only the unanswered part."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import hiredis
import orjson
from redis.asyncio import Redis
from redis.crc import key_slot

from shoplink.delivery.writer import ClickWriter
from shoplink.ids import new_ulid
from shoplink.redis import RedisTopology
from shoplink.streams import stream_key

from support.click_data import stream_events, xrange
from support.cluster import RedisCluster3
from support.services import RedisProcess
from support.wait import until

EVENTS = 40


def event(n: int) -> bytes:
    return orjson.dumps({"event_id": new_ulid(), "n": n})


def spooled(spool_dir: Path) -> list[int]:
    """The `n` of every event in the spool files, in file order."""
    out = []
    for path in sorted(spool_dir.glob("*.spool")):
        for line in path.read_bytes().splitlines():
            out.append(orjson.loads(line.partition(b" ")[2])["n"])
    return out


def assert_each_event_kept(written: list[int], spool: list[int], *, exact: bool) -> None:
    """Every recorded event is in Redis or in the spool; with `exact`, in exactly one of them
    (a batch Redis applied after the writer gave up on it is spooled too: a duplicate by event
    id, which consumers drop; never a loss)."""
    assert len(spool) == len(set(spool))
    assert set(written) | set(spool) == set(range(EVENTS))
    if exact:
        assert sorted(written + spool) == list(range(EVENTS))


async def test_close_while_redis_answers_out_of_memory(own_redis: RedisProcess, tmp_path: Path) -> None:
    admin = Redis.from_url(own_redis.url)
    writer = ClickWriter(own_redis.url, tmp_path, batch_size=10)
    await writer.start()
    try:
        writer.record(0, event(0))
        await until(lambda: writer.written == 1)
        await admin.config_set("maxmemory-policy", "noeviction")
        await admin.config_set("maxmemory", "1")  # every XADD: -OOM
        for n in range(1, EVENTS):
            writer.record(n % 4, event(n))
        await until(lambda: writer.write_errors > 0)
        await writer.close(deadline_s=0.05)
        await admin.config_set("maxmemory", "0")
        written = [e["n"] for e in await stream_events(admin)]
    finally:
        await admin.aclose()
    assert_each_event_kept(written, spooled(tmp_path), exact=True)
    assert writer.written + writer.spooled == EVENTS


async def test_close_while_redis_is_stopped(own_redis: RedisProcess, tmp_path: Path) -> None:
    admin = Redis.from_url(own_redis.url)
    writer = ClickWriter(own_redis.url, tmp_path, timeout_s=30.0)
    await writer.start()
    assert own_redis.proc is not None
    pid = own_redis.proc.pid
    try:
        writer.record(0, event(0))
        await until(lambda: writer.written == 1)
        os.kill(pid, signal.SIGSTOP)  # connections stay open, nothing is answered
        for n in range(1, EVENTS):
            writer.record(n % 4, event(n))
        await until(lambda: writer.buffered == 0)  # the batch is in flight
        await writer.close(deadline_s=0.2)  # far below the send timeout: the send is cancelled
        os.kill(pid, signal.SIGCONT)
        written = [e["n"] for e in await stream_events(admin)]
    finally:
        os.kill(pid, signal.SIGCONT)
        await admin.aclose()
    assert_each_event_kept(written, spooled(tmp_path), exact=False)
    assert sorted(spooled(tmp_path)) == list(range(1, EVENTS))


async def test_close_while_a_batch_is_half_refused_and_half_unanswered(
        own_redis: RedisProcess, tmp_path: Path) -> None:
    """Redis answers the first XADD of a batch with an error (NOPERM: the writer's ACL user may
    write shard 0 only) and holds the next one (CLIENT PAUSE WRITE); the deadline cancels the send
    then. The refused event must be spooled with the unanswered ones."""
    admin = Redis.from_url(own_redis.url)
    await admin.execute_command("ACL", "SETUSER", "clicks", "on", ">clicks-pw", "~" + stream_key(0), "+@all")  # type: ignore[no-untyped-call]
    url = f"redis://clicks:clicks-pw@127.0.0.1:{own_redis.port}/0"
    writer = ClickWriter(url, tmp_path, timeout_s=30.0, batch_size=EVENTS)
    await writer.start()
    try:
        writer.record(0, event(0))
        await until(lambda: writer.written == 1)
        await admin.execute_command("CLIENT", "PAUSE", "60000", "WRITE")  # type: ignore[no-untyped-call]
        for n in range(1, EVENTS):
            writer.record(1 if n % 2 else 0, event(n))  # n = 1 first: shard 1, refused
        received = writer._conn.received  # the replies of the send in flight, so far
        await until(lambda: writer._conn.received is not received and len(writer._conn.received) == 1)
        assert isinstance(writer._conn.received[0], hiredis.ReplyError)  # NOPERM; the rest held
        await writer.close(deadline_s=0.05)
        await admin.execute_command("CLIENT", "UNPAUSE")  # type: ignore[no-untyped-call]
        written = [e["n"] for e in await stream_events(admin)]
    finally:
        await admin.aclose()
    assert written == [0]
    assert_each_event_kept(written, spooled(tmp_path), exact=True)
    assert writer.written == 1 and writer.spooled == EVENTS - 1


async def test_close_on_a_cluster_with_one_node_refusing_and_one_paused(
        redis_cluster: RedisCluster3, tmp_path: Path) -> None:
    """The same on a Redis Cluster, where a batch is sent to every node concurrently: one node
    answers its part with -OOM at once, the other holds its part; the deadline cancels both
    sends. The refused part, whose send had already returned, must be spooled too."""
    by_node: dict[int, list[int]] = {}
    for shard in range(12):
        by_node.setdefault(redis_cluster.node_of_slot(key_slot(stream_key(shard).encode())).port, []).append(shard)
    (refusing, refused_shard), (paused, held_shard) = [(port, shards[0]) for port, shards in list(by_node.items())[:2]]
    seeds = tuple(redis_cluster.seeds.split(","))
    topology = RedisTopology(f"redis://{seeds[0]}/0", seeds)
    await topology.connect()
    refusing_client = Redis(host="127.0.0.1", port=refusing)
    paused_client = Redis(host="127.0.0.1", port=paused)
    writer = ClickWriter(topology.url_for_shard(0), tmp_path, timeout_s=30.0, batch_size=EVENTS,
                         router=topology)
    await writer.start()
    try:
        writer.record(refused_shard, event(0))
        writer.record(held_shard, event(1))
        await until(lambda: writer.written == 2)
        await refusing_client.config_set("maxmemory-policy", "noeviction")
        await refusing_client.config_set("maxmemory", "1")
        await paused_client.execute_command("CLIENT", "PAUSE", "60000", "WRITE")  # type: ignore[no-untyped-call]
        for n in range(2, EVENTS):
            writer.record(refused_shard if n % 2 else held_shard, event(n))
        refusing_conn = writer._conns[topology.url_for_shard(refused_shard)]
        await until(lambda: len(refusing_conn.received) == (EVENTS - 2) // 2)  # all -OOM
        await writer.close(deadline_s=0.05)
        await paused_client.execute_command("CLIENT", "UNPAUSE")  # type: ignore[no-untyped-call]
        await refusing_client.config_set("maxmemory", "0")
        written = [orjson.loads(fields[b"e"])["n"] for shard in (refused_shard, held_shard)
                   for _, fields in await xrange(topology.client, stream_key(shard))]
    finally:
        await paused_client.execute_command("CLIENT", "UNPAUSE")  # type: ignore[no-untyped-call]
        await refusing_client.config_set("maxmemory", "0")
        await refusing_client.aclose()
        await paused_client.aclose()
        await topology.aclose()
    assert sorted(written) == [0, 1]
    assert_each_event_kept(written, spooled(tmp_path), exact=True)
    assert writer.written == 2 and writer.spooled == EVENTS - 2
