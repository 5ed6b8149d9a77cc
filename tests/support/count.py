"""`shoplink count` as its own process, with the test's settings: once (`run_count`), running
beside a test (`start_count_worker` / `stop_count_worker`), or crashing at a chosen point of its
work (`crash_at`: through support/count_launcher.py)."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import ClientSession
from redis.asyncio import Redis

from shoplink.config import Settings

from support.services import free_port
from support.wait import until

LAUNCHER = Path(__file__).with_name("count_launcher.py")


def worker_env(settings: Settings, **extra: Any) -> dict[str, str]:
    """The environment of a count process: the test's stores, short claim and block times, and
    `extra` settings by name (`count_batch=40` is SHOPLINK_COUNT_BATCH=40)."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "SHOPLINK_DATABASE_URL": settings.database_url,
        "SHOPLINK_REDIS_URL": settings.redis_url,
        "SHOPLINK_SECRET_KEY": settings.secret_key,
        "SHOPLINK_LOG_LEVEL": "warning",
        "SHOPLINK_CLICK_SHARDS": str(settings.click_shards),
        "SHOPLINK_COUNT_CLAIM_IDLE_MS": "300",
        "SHOPLINK_COUNT_BLOCK_MS": "100",
    }
    env.update({f"SHOPLINK_{key.upper()}": str(value) for key, value in extra.items()})
    return env


def count_argv(*args: str, crash_at: str | None = None, crash_after: int = 1) -> list[str]:
    """The command line of `shoplink count ARGS`; with `crash_at`, one that exits with 17 the
    `crash_after`-th time the worker reaches that point (support/count_launcher.py)."""
    if crash_at is None:
        return [sys.executable, "-m", "shoplink", "count", *args]
    # -P: the launcher's own folder (tests/support) stays off sys.path, where its dns.py (the
    # test DNS server) would shadow dnspython's `dns` package
    return [sys.executable, "-P", str(LAUNCHER), crash_at, str(crash_after), *args]


async def run_count(settings: Settings, *args: str, timeout: float = 90, crash_at: str | None = None,
                    crash_after: int = 1, **env: Any) -> tuple[int, str, str]:
    """Run `shoplink count ARGS` to its end; (exit code, stdout, stderr)."""
    return await _run(count_argv(*args, crash_at=crash_at, crash_after=crash_after), settings,
                      timeout, env)


async def run_shoplink(settings: Settings, *args: str, timeout: float = 90,
                       **env: Any) -> tuple[int, str, str]:
    """Run another command, `shoplink ARGS` (e.g. `reconcile`), the same way."""
    return await _run([sys.executable, "-m", "shoplink", *args], settings, timeout, env)


async def _run(argv: list[str], settings: Settings, timeout: float,
               env: dict[str, Any]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        *argv, env=worker_env(settings, **env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=timeout)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(f"`{' '.join(argv[1:])}` did not finish in {timeout} s:\n"
                             f"{err.decode()[-3000:]}") from None
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def start_count_worker(settings: Settings, *args: str, crash_at: str | None = None, crash_after: int = 1,
                             **env: Any) -> asyncio.subprocess.Process:
    """A long-running `shoplink count ARGS` (stop it with `stop_count_worker`, or kill it); its
    stdout is kept for --exit-when-idle's report."""
    return await asyncio.create_subprocess_exec(
        *count_argv(*args, crash_at=crash_at, crash_after=crash_after), env=worker_env(settings, **env),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def start_serving_count_worker(settings: Settings, **env: Any) -> asyncio.subprocess.Process:
    """`start_count_worker`, returned once the process serves its /metrics (on a free port): past
    its start-up, so that a SIGTERM from then on is a clean stop (before, one that lands while
    the interpreter is still importing ends the process by the signal)."""
    port = free_port()
    proc = await start_count_worker(settings, count_metrics_port=port, **env)

    async def serving() -> bool:
        try:
            async with ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as reply:
                return reply.status == 200
        except aiohttp.ClientError:
            return False

    await until(serving, timeout=60, interval=0.05, what="the count worker serving its /metrics")
    return proc


async def stop_count_worker(proc: asyncio.subprocess.Process) -> tuple[int, str]:
    """SIGTERM (unless it has exited already), then (exit code, stderr)."""
    if proc.returncode is None:
        proc.terminate()
    _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode is not None
    return proc.returncode, err.decode(errors="replace")


async def count_metric(http: ClientSession, port: int, name: str) -> float:
    """`name` on the /metrics of a count process (SHOPLINK_COUNT_METRICS_PORT), summed over its
    labels (0 when absent)."""
    async with http.get(f"http://127.0.0.1:{port}/metrics") as reply:
        assert reply.status == 200, reply.status
        text = await reply.text()
    pattern = rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$"
    return sum(float(m[1]) for m in re.finditer(pattern, text, re.MULTILINE))


async def status_before_reading(redis: Redis, settings: Settings, family: str) -> dict[str, Any]:
    """`count --status` (rates over 0.2 s) once the counters group exists on every shard of the
    `family` streams (`clicks` or `events`), as a worker creates it, but has read nothing."""
    for shard in range(settings.click_shards):
        await redis.xgroup_create(f"shoplink:{family}:{{{shard}}}", "counters", id="0", mkstream=True)
    rc, out, err = await run_count(settings, "--status", "--interval", "0.2")
    assert rc == 0, err
    doc: dict[str, Any] = orjson.loads(out)
    return doc

