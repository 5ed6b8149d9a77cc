"""A running server claims spool files that appear unheld while it runs: the spool of a process
that crashed (or of a `serve --workers` child that keeps failing to restart) is replayed by the
processes still running, within ORPHAN_SCAN_S, not only by the next process that starts. A file
whose writer is alive (its flock held) is never touched."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import orjson
import pytest
from redis.asyncio import Redis

from shoplink.delivery import writer as writer_module
from shoplink.delivery.spool import SpoolFile
from shoplink.delivery.writer import ClickWriter
from shoplink.ids import new_ulid
from shoplink.keys import CLICK_WRITER, SETTINGS

from support.api import ServerFactory
from support.click_data import stream_events, wait_for_events
from support.services import RedisProcess
from support.wait import until


def event(n: int) -> bytes:
    return orjson.dumps({"event_id": new_ulid(), "n": n})


async def test_a_running_writer_replays_the_spool_of_a_writer_that_died(
        redis_proc: RedisProcess, redis: Redis, tmp_path: Path) -> None:
    writer = ClickWriter(redis_proc.url, tmp_path, orphan_scan_s=0.05)
    await writer.start()
    other = SpoolFile.create(tmp_path)  # another live writer's spool, held under its flock
    other.append([(n % 4, event(n)) for n in range(50)])
    try:
        writer.record(0, event(100))
        await until(lambda: writer.written == 1)
        scans = writer.orphan_scans
        await until(lambda: writer.orphan_scans >= scans + 2)
        assert len(await stream_events(redis)) == 1 and other.path.exists()  # held: left alone
        other.close()  # its process dies: the lock is gone, the file stays
        await until(lambda: writer.replayed == 50)
        writer.record(1, event(101))
        await until(lambda: writer.written == 52)
    finally:
        other.close()
        await writer.close()
    events = await stream_events(redis)
    assert sorted(e["n"] for e in events) == [*range(50), 100, 101]
    assert {e["n"] for e in events if e.get("replayed")} == set(range(50))
    for shard in range(4):  # each shard in spool order
        ns = [e["n"] for e in events if e["n"] < 50 and e["n"] % 4 == shard]
        assert ns == sorted(ns)
    assert not other.path.exists() and not list(tmp_path.glob("*.spool"))


CRASHING_WRITER = """
import os, signal, sys
from pathlib import Path
from shoplink.delivery.spool import SpoolFile
from shoplink.ids import new_ulid

spool = SpoolFile.create(Path(sys.argv[1]))
spool.append([(n % 4, b'{"event_id":"%s","n":%d}' % (new_ulid().encode(), n)) for n in range(int(sys.argv[2]))])
os.kill(os.getpid(), signal.SIGKILL)
"""


async def test_a_running_server_replays_a_spool_left_by_a_crashed_process(
        start_server: ServerFactory, redis: Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer_module, "ORPHAN_SCAN_S", 0.1)  # instead of 30 s
    server = await start_server()
    spool_dir = server.app[SETTINGS].spool_dir
    # A process with events spooled dies with SIGKILL after the server started: nothing will
    # start after it to claim its file.
    crashed = await asyncio.create_subprocess_exec(sys.executable, "-c", CRASHING_WRITER, str(spool_dir), "30")
    assert await crashed.wait() < 0
    events = await wait_for_events(redis, 30)
    assert sorted(e["n"] for e in events) == list(range(30)) and all(e["replayed"] for e in events)
    await until(lambda: not list(spool_dir.glob("*.spool")))  # replayed and removed
    assert server.app[CLICK_WRITER].replayed == 30
