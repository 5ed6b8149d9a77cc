"""`shoplink serve --workers N`: N real server processes on one port under a supervisor, with
real PostgreSQL and a private redis-server. Every answered click ends up in Redis exactly once,
whatever happens to the workers: SIGTERM, kill -9 of one of them, of the supervisor, or a
smaller N at the next start."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from aiohttp import ClientSession, TCPConnector
from redis.asyncio import Redis

from support.api import AccountFactory, Api
from support.click_data import make_shop, stream_events, video_anchor, wait_for_events
from support.click_server import ServeProcess
from support.services import RedisProcess, admin_database_url, create_database, drop_database, free_port
from support.wait import until

TEST_SECRET = "test-secret-key-0123456789abcdef"
SPOOL_NAME = re.compile(r"^clicks-(\d+)-[0-9a-f]+\.spool$")


@pytest.fixture
async def fresh() -> AsyncIterator[ClientSession]:
    """A client that opens a new connection per request: SO_REUSEPORT spreads connections, not
    requests, over the workers."""
    async with ClientSession(connector=TCPConnector(force_close=True)) as session:
        yield session


async def clicks(session: ClientSession, url: str, code: str, count: int) -> list[str]:
    replies = await asyncio.gather(*(Api(session, url, None).get(f"/r/{code}") for _ in range(count)))
    assert [r.status for r in replies] == [302] * count
    return [r.headers["Location"].rsplit("sl_click=", 1)[1].split("#")[0] for r in replies]


def spooled_lines(spool: Path) -> dict[int, int]:
    """{pid: events} over the spool files that hold events, by the pid in their name."""
    out: dict[int, int] = {}
    for path in spool.glob("*.spool"):
        match = SPOOL_NAME.match(path.name)
        assert match, path.name
        try:
            lines = len(path.read_bytes().splitlines())
        except FileNotFoundError:  # replayed and removed meanwhile
            continue
        if lines:
            out[int(match[1])] = out.get(int(match[1]), 0) + lines
    return out


async def until_spooled(spool: Path, count: int) -> None:
    await until(lambda: sum(spooled_lines(spool).values()) == count, timeout=20)


async def worker_metrics(serve: ServeProcess, name: str) -> dict[int, float]:
    return await asyncio.to_thread(serve.worker_metrics, name)


async def until_workers(serve: ServeProcess, count: int, *, exclude: frozenset[int] = frozenset(),
                        timeout: float = 60) -> set[int]:
    """The pids of `count` live workers (none of `exclude`), once that many answer."""
    async def answering() -> set[int] | None:
        pids = set(await worker_metrics(serve, "shoplink_worker_info")) - exclude
        return pids if len(pids) >= count else None

    return await until(answering, timeout=timeout, interval=0.1)


def gone(pid: int) -> bool:
    """No such process any more (or only its zombie, when nobody reaps it)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


async def test_two_workers_answer_on_one_port_and_sigterm_flushes_both(
        make_account: AccountFactory, pool: asyncpg.Pool, database_url: str, own_redis: RedisProcess,
        fresh: ClientSession, tmp_path: Path) -> None:
    shop = await make_shop(await make_account("seller"))
    _, code, _ = await video_anchor(pool, shop)
    # A flush interval far longer than the test: only the shutdown flush can write the events.
    serve = ServeProcess(database_url, own_redis.url, tmp_path / "spool", TEST_SECRET, args=("--workers", "2"),
                         click_flush_ms="60000", click_flush_batch="100000")
    await asyncio.to_thread(serve.start)
    client = Redis.from_url(own_redis.url)
    try:
        assert len(await until_workers(serve, 2)) == 2
        answered: list[str] = []
        served: dict[int, float] = {}
        for _ in range(20):  # until each worker holds clicks in its buffer
            answered += await clicks(fresh, serve.url, code, 10)
            served = await worker_metrics(serve, "shoplink_click_redirects_total")
            if len(served) == 2 and all(served.values()):
                break
        assert len(served) == 2 and all(served.values()), served
        # each worker holds its own clicks in its own buffer, none written yet
        assert await worker_metrics(serve, "shoplink_click_events_buffered") == served
        assert sum(served.values()) == len(answered)
        assert sum([await client.xlen(f"shoplink:clicks:{{{n}}}") for n in range(4)]) == 0

        assert await asyncio.to_thread(serve.terminate) == 0
        events = await stream_events(client)
        assert len(events) == len(answered)
        assert sorted(e["event_id"] for e in events) == sorted(answered)
        assert not spooled_lines(tmp_path / "spool")
    finally:
        serve.kill()
        await client.aclose()


async def test_a_killed_worker_is_restarted_and_replays_its_spool(
        make_account: AccountFactory, pool: asyncpg.Pool, database_url: str, own_redis: RedisProcess,
        fresh: ClientSession, tmp_path: Path) -> None:
    shop = await make_shop(await make_account("seller"))
    _, code, _ = await video_anchor(pool, shop)
    spool = tmp_path / "spool"
    serve = ServeProcess(database_url, own_redis.url, spool, TEST_SECRET, args=("--workers", "2"),
                         click_redis_timeout_s="0.3")
    await asyncio.to_thread(serve.start)
    client = Redis.from_url(own_redis.url)
    try:
        workers = await until_workers(serve, 2)
        assert len(workers) == 2
        own_redis.stop()  # no persistence: the restarted Redis holds only what is replayed
        answered: list[str] = []
        for _ in range(20):  # until both workers spooled clicks
            answered += await clicks(fresh, serve.url, code, 10)
            await until_spooled(spool, len(answered))
            if set(spooled_lines(spool)) == workers:
                break
        assert set(spooled_lines(spool)) == workers
        assert sum(spooled_lines(spool).values()) == len(answered)  # all on disk, none lost

        victim = min(workers)
        victim_files = list(spool.glob(f"clicks-{victim}-*.spool"))
        left_behind = spooled_lines(spool)[victim]
        os.kill(victim, signal.SIGKILL)
        replacement = await until_workers(serve, 1, exclude=frozenset(workers))  # restarted, serving again
        assert len(replacement) == 1 and victim not in replacement
        assert gone(victim)
        assert [p for p in victim_files if p.exists()] == victim_files  # Redis is still down

        own_redis.start()
        await client.aclose()
        client = Redis.from_url(own_redis.url)
        events = await wait_for_events(client, len(answered), timeout=30)
        # Every spool replayed (the own ones emptied, the victim's removed): nothing more can come.
        await until(lambda: not spooled_lines(spool), timeout=20)
        events = await stream_events(client)
        assert len(events) == len(answered)
        assert sorted(e["event_id"] for e in events) == sorted(answered)
        assert all(e["replayed"] is True for e in events)
        await until(lambda: not any(p.exists() for p in victim_files), timeout=20)
        assert not any(p.exists() for p in victim_files)  # the new worker claimed and replayed it
        replayed = await worker_metrics(serve, "shoplink_click_events_replayed_total")
        assert replayed[replacement.pop()] == left_behind
        assert await asyncio.to_thread(serve.terminate) == 0
    finally:
        serve.kill()
        await client.aclose()


async def test_spools_of_slots_that_no_longer_exist_are_adopted(
        make_account: AccountFactory, pool: asyncpg.Pool, database_url: str, own_redis: RedisProcess,
        fresh: ClientSession, tmp_path: Path) -> None:
    shop = await make_shop(await make_account("seller"))
    _, code, _ = await video_anchor(pool, shop)
    spool = tmp_path / "spool"
    three = ServeProcess(database_url, own_redis.url, spool, TEST_SECRET, args=("--workers", "3"),
                         click_redis_timeout_s="0.3")
    await asyncio.to_thread(three.start)
    client = Redis.from_url(own_redis.url)
    two = ServeProcess(database_url, own_redis.url, spool, TEST_SECRET, args=("--workers", "2"))
    try:
        workers = await until_workers(three, 3)
        assert len(workers) == 3
        own_redis.stop()
        answered: list[str] = []
        for _ in range(30):
            answered += await clicks(fresh, three.url, code, 10)
            await until_spooled(spool, len(answered))
            if set(spooled_lines(spool)) == workers:
                break
        # SIGTERM with Redis down: every worker spools what it holds, all exit cleanly
        assert await asyncio.to_thread(three.terminate) == 0
        assert set(spooled_lines(spool)) == workers
        assert sum(spooled_lines(spool).values()) == len(answered)

        own_redis.start()
        await client.aclose()
        client = Redis.from_url(own_redis.url)
        await asyncio.to_thread(two.start)  # one slot fewer: its spool must still be replayed
        events = await wait_for_events(client, len(answered), timeout=30)
        # Every spool replayed and removed: nothing more can come.
        await until(lambda: not list(spool.glob("*.spool")), timeout=20)
        events = await stream_events(client)
        assert len(events) == len(answered)
        assert sorted(e["event_id"] for e in events) == sorted(answered)
        await until(lambda: not list(spool.glob("*.spool")), timeout=20)
        assert not list(spool.glob("*.spool"))
        assert await asyncio.to_thread(two.terminate) == 0
    finally:
        three.kill()
        two.kill()
        await client.aclose()


async def test_workers_stop_and_flush_when_the_supervisor_is_killed(
        make_account: AccountFactory, pool: asyncpg.Pool, database_url: str, own_redis: RedisProcess,
        fresh: ClientSession, tmp_path: Path) -> None:
    shop = await make_shop(await make_account("seller"))
    _, code, _ = await video_anchor(pool, shop)
    serve = ServeProcess(database_url, own_redis.url, tmp_path / "spool", TEST_SECRET, args=("--workers", "2"),
                         click_flush_ms="60000", click_flush_batch="100000")
    await asyncio.to_thread(serve.start)
    client = Redis.from_url(own_redis.url)
    try:
        workers = await until_workers(serve, 2)
        assert len(workers) == 2
        answered = await clicks(fresh, serve.url, code, 40)
        serve.kill()  # SIGKILL to the supervisor: its workers must not serve on as orphans
        await until(lambda: all(gone(pid) for pid in workers), timeout=20)
        assert all(gone(pid) for pid in workers)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", serve.port), timeout=1).close()
        events = await stream_events(client)  # they stopped the graceful way: buffers flushed
        assert sorted(e["event_id"] for e in events) == sorted(answered)
    finally:
        serve.kill()
        await client.aclose()


def run_serve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "shoplink", "serve", *args], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=60)


async def test_workers_that_cannot_start_stop_the_supervisor(tmp_path: Path, own_redis: RedisProcess) -> None:
    """An unmigrated database: exit 1 with the reason, not a restart loop."""
    admin = admin_database_url()
    empty = await create_database(admin)
    try:
        env = {"SHOPLINK_DATABASE_URL": empty, "SHOPLINK_REDIS_URL": own_redis.url,
               "SHOPLINK_PORT": str(free_port()), "SHOPLINK_SPOOL_DIR": str(tmp_path / "spool"),
               "SHOPLINK_SECRET_KEY": TEST_SECRET, "SHOPLINK_LOG_LEVEL": "warning"}
        done = await asyncio.to_thread(run_serve, env, "--workers", "2")
        assert done.returncode == 1
        assert "unapplied migrations" in done.stderr
        assert "worker failed to start" in done.stderr and "restarting" not in done.stderr
    finally:
        await drop_database(admin, empty)


async def test_a_busy_port_fails_at_once(database_url: str, own_redis: RedisProcess, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {"SHOPLINK_DATABASE_URL": database_url, "SHOPLINK_REDIS_URL": own_redis.url,
               "SHOPLINK_PORT": str(taken.getsockname()[1]), "SHOPLINK_SPOOL_DIR": str(tmp_path),
               "SHOPLINK_SECRET_KEY": TEST_SECRET}
        done = await asyncio.to_thread(run_serve, env, "--workers", "2")
    assert done.returncode == 1
    assert "cannot start" in done.stderr and "Address already in use" in done.stderr
    assert "worker started" not in done.stderr


def _two_free_ports() -> int:
    """A port p such that p and p + 1 are both free (now)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two adjacent free ports")


async def _metrics_text(session: ClientSession, port: int) -> str:
    async with session.get(f"http://127.0.0.1:{port}/metrics") as reply:
        assert reply.status == 200
        return await reply.text()


async def test_each_worker_serves_its_own_metrics_on_its_own_port(
        make_account: AccountFactory, pool: asyncpg.Pool, database_url: str, own_redis: RedisProcess,
        fresh: ClientSession, tmp_path: Path) -> None:
    shop = await make_shop(await make_account("seller"))
    _, code, _ = await video_anchor(pool, shop)
    base = _two_free_ports()
    serve = ServeProcess(database_url, own_redis.url, tmp_path / "spool", TEST_SECRET, args=("--workers", "2"),
                         metrics_port=str(base))
    await asyncio.to_thread(serve.start)
    try:
        assert len(await until_workers(serve, 2)) == 2
        answered = await clicks(fresh, serve.url, code, 40)
        slots: dict[str, str] = {}
        redirects = 0.0
        for port in (base, base + 1):  # SHOPLINK_METRICS_PORT + slot
            text = await _metrics_text(fresh, port)
            info = re.search(r'^shoplink_worker_info\{pid="(\d+)",slot="(\d)"\} 1$', text, re.MULTILINE)
            assert info is not None, text[:2000]
            slots[info[2]] = info[1]
            redirects += sum(float(m[1]) for m in re.finditer(
                r"^shoplink_click_redirects_total\{[^}]*\} (\S+)$", text, re.MULTILINE))
        assert set(slots) == {"0", "1"} and len(set(slots.values())) == 2  # two processes
        assert redirects == len(answered)  # every click counted by exactly one of them
        async with fresh.get(f"http://127.0.0.1:{base}/r/{code}", allow_redirects=False) as reply:
            assert reply.status == 404  # the metrics port serves /metrics only
        assert await asyncio.to_thread(serve.terminate) == 0
    finally:
        serve.kill()


def test_a_busy_metrics_port_stops_serve_with_a_clear_message(
        database_url: str, own_redis: RedisProcess, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        serve = ServeProcess(database_url, own_redis.url, tmp_path / "spool", TEST_SECRET, capture_stderr=True,
                             metrics_port=str(port))
        try:
            with pytest.raises(RuntimeError, match="exited with 1"):
                serve.start()
            assert serve.proc is not None
            serve.proc.wait(timeout=10)
            err = serve.stderr_text()
            assert f"cannot serve /metrics on port {port} (SHOPLINK_METRICS_PORT)" in err, err[-2000:]
        finally:
            serve.kill()


def test_metrics_ports_past_65535_are_refused_before_any_worker_starts(
        database_url: str, own_redis: RedisProcess, tmp_path: Path) -> None:
    serve = ServeProcess(database_url, own_redis.url, tmp_path / "spool", TEST_SECRET, capture_stderr=True,
                         args=("--workers", "2"), metrics_port="65535")  # slot 1 would need 65536
    try:
        with pytest.raises(RuntimeError, match="exited with 1"):
            serve.start()
        err = serve.stderr_text()
        assert "SHOPLINK_METRICS_PORT 65535 + 2 workers runs past port 65535" in err, err[-2000:]
    finally:
        serve.kill()
