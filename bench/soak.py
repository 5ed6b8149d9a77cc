"""Soak benchmark: `shoplink serve --workers 2` and one `shoplink count` under a steady click
load, with a Redis restart in the middle; nothing may be lost and nothing counted twice.

    .venv/bin/python bench/soak.py [--duration 60] [--rate 1000] [--connections 32] [--workers 2]
                                   [--outage 2] [--report bench/results/soak-run.md]

Self-contained: starts its own redis-server (append-only file, `appendfsync everysec`), a fresh
PostgreSQL database on the server in SHOPLINK_TEST_DATABASE_URL (seeded with a seller, a shop,
500 products and 1,000 anchors), `shoplink serve --workers N` and one `shoplink count`, all on
127.0.0.1. The load generator (in this process, asyncio + aiohttp, keep-alive connections) opens
a request every 1/RATE s on a fixed schedule for DURATION s, whatever the answers do (an open
loop: a slow server shows as latency, not as a lower offered rate). Latency is measured from the
scheduled start (so a queue in front of the server counts) and also from the actual send.

At DURATION/2 Redis is stopped with SHUTDOWN (which fsyncs the append-only file, so every
acknowledged XADD survives), kept down OUTAGE s, and started again on the same port and data.
The servers spool clicks meanwhile and replay them; the count worker reconnects.

Checks at the end, after the spools drained and the count worker caught up:
  clicks answered (302 seen by the load generator) == distinct event ids in the streams
  == events the count worker applied (sum of its per-shard `applied` counters)
  == the shop's total clicks from the stats API,
and the set of click ids in the answers' Location equals the set of event ids in the streams.
Stream entries beyond the distinct ids are duplicates a replay may write (reported; consumers
drop them by event_id). Exit status 1 when a check fails.

CPU per click: the server processes (from /proc), redis-server (INFO used_cpu_*, both instances),
the count worker and the load generator; run `uptime` next to it, the machine may be shared.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import re
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from shoplink import db  # noqa: E402
from shoplink.auth.service import AuthService  # noqa: E402

from support.services import admin_database_url, create_database, drop_database, free_port  # noqa: E402

SHARDS = 4
clock = time.perf_counter  # uvloop's loop.time() counts whole milliseconds
ANCHORS = 1000
SECRET = "bench-secret-key-0123456789abcdef"
METRICS_TOKEN = "bench-metrics-token-0123456789"  # /metrics on the main port needs it
METRICS_AUTH = {"Authorization": f"Bearer {METRICS_TOKEN}"}


# ---- the stack -------------------------------------------------------------------------------

class RedisServer:
    """redis-server with an append-only file, restartable on the same port and data."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.dir = directory
        self.proc: asyncio.subprocess.Process | None = None
        self.cpu_before_restart = 0.0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            "redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.dir),
            "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
            "--logfile", str(self.dir / "redis.log"), "--loglevel", "notice",
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(500):
            try:
                client = Redis.from_url(self.url)
                try:
                    await client.ping()
                    if (await client.info("persistence"))["loading"] == 0:
                        return
                finally:
                    await client.aclose()
            except (OSError, RedisConnectionError, ResponseError):  # not up yet, or loading the AOF
                pass
            await asyncio.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    async def cpu(self) -> float:
        client = Redis.from_url(self.url)
        try:
            info = await client.info("cpu")
        finally:
            await client.aclose()
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    async def shutdown(self) -> None:
        """SHUTDOWN: the append-only file is written and fsynced before the server exits."""
        self.cpu_before_restart += await self.cpu()
        client = Redis.from_url(self.url)
        try:
            await client.shutdown()
        finally:
            await client.aclose()
        assert self.proc is not None
        await asyncio.wait_for(self.proc.wait(), 30)

    async def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a process (and of its reaped children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


async def seed(url: str) -> tuple[str, int, list[str]]:
    """A seller (token), a shop on shop.example with 500 products, a video and ANCHORS anchors."""
    pool = await db.create_pool(url, min_size=1, max_size=2)
    try:
        async with pool.acquire() as con:
            await db.migrate(con)
        account, token = await AuthService(pool).create_account("soak", ["seller"])
        async with pool.acquire() as con:
            shop = await con.fetchval(
                "INSERT INTO shops (owner_id, name) VALUES ($1, 'Soak') RETURNING id", account.id)
            # verified, as an operator approval would leave it (only verified domains redirect)
            await con.execute(
                """INSERT INTO shop_domains (shop_id, domain, token, state, verified_at, verified_by)
                   VALUES ($1, 'shop.example', replace(gen_random_uuid()::text, '-', ''), 'verified', now(),
                           'operator')""", shop)
            products = [r["id"] for r in await con.fetch(
                """INSERT INTO products (shop_id, title, url)
                   SELECT $1, 'Product ' || n, 'https://shop.example/p/' || n
                     FROM generate_series(1, 500) n RETURNING id""", shop)]
            video = await con.fetchval(
                """INSERT INTO videos (owner_id, title, file_path, size_bytes, duration_s, fps,
                                       frame_count, width, height, codec)
                   VALUES ($1, 'soak', '/tmp/soak.mp4', 1, 60, 30, 1800, 720, 1280, 'h264') RETURNING id""",
                account.id)
            codes = list(dict.fromkeys("Sk" + secrets.token_hex(4) for _ in range(ANCHORS)))
            await con.executemany(
                """INSERT INTO anchors (code, surface, video_id, product_id, publisher_id, start_s, end_s)
                   VALUES ($1, 'video', $2, $3, $4, 0, 10)""",
                [(c, video, products[i % len(products)], account.id) for i, c in enumerate(codes)])
        return token.token, shop, codes
    finally:
        await pool.close()


# ---- the load --------------------------------------------------------------------------------

@dataclass
class Load:
    sent: int = 0
    answered: int = 0  # 2xx/3xx
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    errors: collections.Counter[str] = field(default_factory=collections.Counter)
    click_ids: list[str] = field(default_factory=list)
    from_schedule: list[float] = field(default_factory=list)  # (t_due, latency) kept apart below
    from_send: list[float] = field(default_factory=list)
    due_at: list[float] = field(default_factory=list)
    per_second: collections.Counter[int] = field(default_factory=collections.Counter)
    cpu_s: float = 0.0


async def run_load(base_url: str, codes: list[str], *, rate: float, duration: float,
                   connections: int, t0: float) -> Load:
    load = Load()
    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(code: str, due: float) -> None:
            sent = clock()
            try:
                async with session.get(f"{base_url}/r/{code}", allow_redirects=False) as resp:
                    await resp.read()
                    status, location = resp.status, resp.headers.get("Location", "")
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                load.errors[type(exc).__name__] += 1
                return
            done = clock()
            load.statuses[status] += 1
            if 200 <= status < 400:
                load.answered += 1
                load.per_second[int(done - t0)] += 1
                load.click_ids.append(location.rsplit("sl_click=", 1)[1].split("#")[0])
                load.from_schedule.append(done - due)
                load.from_send.append(done - sent)
                load.due_at.append(due - t0)

        total = int(rate * duration)
        tasks: set[asyncio.Task[None]] = set()
        rng_codes = [codes[i % len(codes)] for i in range(0, total * 7919, 7919)]  # spread, repeatable
        i = 0
        while i < total:
            now = clock()
            while i < total and t0 + i / rate <= now:
                task = asyncio.create_task(one(rng_codes[i], t0 + i / rate))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                i += 1
            load.sent = i
            await asyncio.sleep(max(0.0, min(0.002, t0 + i / rate - clock())))
        await asyncio.gather(*tasks)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    load.cpu_s = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    return load


def worst_seconds(load: Load, count: int = 5) -> list[tuple[int, float]]:
    """The `count` seconds of the run (by scheduled start) with the highest p99 latency."""
    by_second: dict[int, list[float]] = collections.defaultdict(list)
    for lat, due in zip(load.from_schedule, load.due_at, strict=True):
        by_second[int(due)].append(lat)
    worst = sorted(((sec, pct(lats, .99)) for sec, lats in by_second.items()), key=lambda x: -x[1])
    return sorted(worst[:count])


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ---- reading the results ---------------------------------------------------------------------

async def stream_ids(redis: Redis) -> list[str]:
    ids: list[str] = []
    for shard in range(SHARDS):
        key = f"shoplink:clicks:{{{shard}}}"
        start = "-"
        while True:
            entries = await redis.xrange(key, min=start, count=10_000)
            for _id, fields in entries:
                ids.append(orjson.loads(fields[b"e"])["event_id"])
            if len(entries) < 10_000:
                break
            last = entries[-1][0].decode()
            start = "(" + last
    return ids


async def applied(redis: Redis) -> int:
    values = [await redis.get(f"sla:{{{shard}}}:applied") for shard in range(SHARDS)]
    return sum(int(v or 0) for v in values)


def spool_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.glob("*.spool"))


async def spool_metrics(base_url: str, workers: int) -> dict[str, dict[str, float]]:
    """{pid: {metric: value}} of the spool counters, scraped on new connections until every
    worker answered (the kernel hands each connection to any of them)."""
    names = ("shoplink_click_events_spooled_total", "shoplink_click_events_replayed_total")
    seen: dict[str, dict[str, float]] = {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        for _ in range(200):
            async with session.get(f"{base_url}/metrics", headers=METRICS_AUTH) as resp:
                text = await resp.text()
            pid = re.search(r'shoplink_worker_info\{pid="(\d+)"', text)
            if pid:
                seen[pid[1]] = {n: float(m[1]) for n in names
                                if (m := re.search(rf"^{n} (\S+)$", text, re.MULTILINE))}
            if len(seen) >= workers:
                break
    return seen


async def stats_total(base_url: str, token: str, shop: int) -> tuple[int, list[int]]:
    """The shop's total clicks from the stats API, and the statuses of failed attempts (each
    attempt on a new connection, so on any worker)."""
    failed: list[int] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
        for _ in range(10):
            async with session.get(f"{base_url}/api/v1/stats/shops/{shop}?granularity=minute",
                                   headers={"Authorization": f"Bearer {token}"}) as resp:
                body = await resp.json()
                if resp.status == 200:
                    total: int = body["totals"]["clicks"]
                    return total, failed
                failed.append(resp.status)
    raise RuntimeError(f"the stats API keeps failing: {failed}")


# ---- the run ---------------------------------------------------------------------------------

def publish(lines: list[str], path: str | None, checks: dict[str, bool]) -> int:
    """Print the report (and write it to `path`); the exit status: 0 when every check passed."""
    report = "\n".join(lines)
    print(report)
    if path:
        Path(path).write_text(report + "\n")
    return 0 if all(checks.values()) else 1


async def stop(*procs: asyncio.subprocess.Process | None) -> None:
    """SIGTERM each process still running; SIGKILL what has not ended 30 s later."""
    for proc in procs:
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 30)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def soak(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="shoplink-soak-"))
    redis_server = RedisServer(work / "redis")
    redis_server.dir.mkdir()
    spool = work / "spool"
    admin = admin_database_url()
    database_url = await create_database(admin)
    serve: asyncio.subprocess.Process | None = None
    count: asyncio.subprocess.Process | None = None
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    logs = (work / "serve.log").open("wb"), (work / "count.log").open("wb")
    try:
        await redis_server.start()
        token, shop, codes = await seed(database_url)
        env = {**os.environ, "SHOPLINK_DATABASE_URL": database_url, "SHOPLINK_REDIS_URL": redis_server.url,
               "SHOPLINK_PORT": str(port), "SHOPLINK_SPOOL_DIR": str(spool), "SHOPLINK_SECRET_KEY": SECRET,
               "SHOPLINK_METRICS_TOKEN": METRICS_TOKEN, "SHOPLINK_ACCESS_LOG": "false", "SHOPLINK_LOG_LEVEL": "warning",
               "SHOPLINK_CLICK_SHARDS": str(SHARDS)}
        serve = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "shoplink", "serve", "--workers", str(args.workers),
            env=env, stdout=logs[0], stderr=logs[0])
        count = await asyncio.create_subprocess_exec(sys.executable, "-m", "shoplink", "count", env=env,
                                                     stdout=logs[1], stderr=logs[1])
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as probe:
            deadline = time.monotonic() + 60
            pids: set[str] = set()
            while len(pids) < args.workers:
                if time.monotonic() > deadline or serve.returncode is not None:
                    raise RuntimeError(f"the {args.workers} workers did not start (log: {logs[0].name})")
                try:
                    async with probe.get(base_url + "/metrics", headers=METRICS_AUTH) as resp:
                        found = re.search(r'shoplink_worker_info\{pid="(\d+)"', await resp.text())
                        pids |= {found[1]} if found else set()
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            for code in codes:  # warm each worker's anchor cache (not counted in the run)
                async with probe.get(f"{base_url}/r/{code}", allow_redirects=False) as resp:
                    assert resp.status == 302
        redis = Redis.from_url(redis_server.url)
        while await applied(redis) < len(codes):  # the warm-up clicks counted before the run
            await asyncio.sleep(0.1)
        warm = len(codes)
        workers = children(serve.pid)
        cpu_serve0 = sum(proc_cpu(p) for p in workers)
        cpu_count0 = proc_cpu(count.pid)
        cpu_redis0 = await redis_server.cpu()

        t0 = clock() + 0.2
        restart: dict[str, float] = {}

        async def restart_redis() -> None:
            await asyncio.sleep(t0 + args.duration / 2 - clock())
            restart["down_at"] = clock() - t0
            await redis_server.shutdown()
            await asyncio.sleep(args.outage)
            await redis_server.start()
            restart["up_at"] = clock() - t0

        restarter = asyncio.create_task(restart_redis())
        await redis.aclose()
        load = await run_load(base_url, codes, rate=args.rate, duration=args.duration,
                              connections=args.connections, t0=t0)
        await restarter
        load_end = clock() - t0
        cpu_serve = sum(proc_cpu(p) for p in workers) - cpu_serve0
        if sorted(children(serve.pid)) != sorted(workers):
            print("note: a worker was restarted during the run; its CPU is not all counted", file=sys.stderr)

        # drain: spools replayed, every answered click in the streams, the count worker caught up
        redis = Redis.from_url(redis_server.url)
        expected = warm + load.answered
        deadline = time.monotonic() + 120
        while True:
            ids = await stream_ids(redis)
            counted = await applied(redis)
            drained = spool_bytes(spool) == 0 and len(set(ids)) >= expected and counted >= len(set(ids))
            if drained or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # anything late would show now
        ids = await stream_ids(redis)
        counted = await applied(redis) - warm
        stats, stats_failed = await stats_total(base_url, token, shop)
        stats -= warm
        spools = await spool_metrics(base_url, args.workers)
        cpu_count = proc_cpu(count.pid) - cpu_count0
        cpu_redis = redis_server.cpu_before_restart + await redis_server.cpu() - cpu_redis0
        await redis.aclose()

        serve.send_signal(signal.SIGTERM)
        serve_exit = await asyncio.wait_for(serve.wait(), 60)
        distinct = set(ids)
        answered_ids = set(load.click_ids)
        warm_ids = distinct - answered_ids
        checks = {
            "answered == distinct events in the streams": load.answered == len(distinct) - warm,
            "the answered click ids are exactly the stream's event ids (besides warm-up)":
                answered_ids <= distinct and len(warm_ids) == warm,
            "answered == counted by the count worker": load.answered == counted,
            "answered == the stats API's total": load.answered == stats,
            "no request left unanswered": not load.errors and load.answered == load.sent,
            "serve --workers exited 0 on SIGTERM": serve_exit == 0,
        }

        window = (restart["down_at"] - 1, restart["up_at"] + 3)
        outage = [lat for lat, due in zip(load.from_schedule, load.due_at, strict=True)
                  if window[0] <= due <= window[1]]
        steady = [lat for lat, due in zip(load.from_schedule, load.due_at, strict=True)
                  if not window[0] <= due <= window[1]]
        per_s = [load.per_second.get(s, 0) for s in range(int(args.duration))]
        ms = 1000.0
        us = 1e6 / max(1, load.answered)
        lines = [
            f"## Soak: {args.workers} server processes + 1 count worker, {args.rate:g} clicks/s offered "
            f"for {args.duration:g} s, Redis restarted at {restart['down_at']:.1f} s "
            f"(down {restart['up_at'] - restart['down_at']:.1f} s)",
            "",
            f"- machine: {os.cpu_count()} CPUs, load average before/after: {args.load_before} / "
            f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}",
            f"- offered {load.sent} requests over {load_end:.1f} s; answered {load.answered} "
            f"({load.answered / args.duration:.0f}/s), statuses {dict(load.statuses)}, "
            f"errors {dict(load.errors) or 0}",
            f"- answered per second: min {min(per_s)}, median {statistics.median(per_s):.0f}, max {max(per_s)}; "
            f"worst seconds by p99 latency (by scheduled second): "
            + ", ".join(f"{sec} s: {p99 * ms:.0f} ms" for sec, p99 in worst_seconds(load)),
            f"- latency from the scheduled start: p50 {pct(load.from_schedule, .5) * ms:.1f} ms, "
            f"p99 {pct(load.from_schedule, .99) * ms:.1f} ms, max {max(load.from_schedule) * ms:.0f} ms",
            f"- latency from the send: p50 {pct(load.from_send, .5) * ms:.1f} ms, "
            f"p99 {pct(load.from_send, .99) * ms:.1f} ms",
            f"- outside the restart window: p50 {pct(steady, .5) * ms:.1f} ms, p99 {pct(steady, .99) * ms:.1f} ms; "
            f"in it ({window[0]:.1f}–{window[1]:.1f} s): p50 {pct(outage, .5) * ms:.1f} ms, "
            f"p99 {pct(outage, .99) * ms:.1f} ms",
            f"- streams: {len(ids) - warm} entries for the run, {len(distinct) - warm} distinct event ids "
            f"({len(ids) - len(distinct)} duplicates from replays); counted {counted}; stats API {stats}"
            + (f" (after failed attempts answered {stats_failed})" if stats_failed else ""),
            "- the outage, per server process: " + "; ".join(
                f"pid {pid} spooled {m.get('shoplink_click_events_spooled_total', 0):.0f}, "
                f"replayed {m.get('shoplink_click_events_replayed_total', 0):.0f}" for pid, m in spools.items()),
            f"- CPU per answered click: servers {cpu_serve * us:.0f} µs, redis {cpu_redis * us:.0f} µs, "
            f"count worker {cpu_count * us:.0f} µs, load generator {load.cpu_s * us:.0f} µs",
            "",
            *[f"- [{'x' if ok else ' '}] {name}" for name, ok in checks.items()],
        ]
        return publish(lines, args.report, checks)
    finally:
        await stop(serve, count)
        await redis_server.kill()
        for log in logs:
            log.close()
        await drop_database(admin, database_url)
        if args.keep:
            print(f"logs and data kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--rate", type=float, default=1000.0, help="clicks per second offered (default 1000)")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections (default 32)")
    parser.add_argument("--workers", type=int, default=2, help="server processes (default 2)")
    parser.add_argument("--outage", type=float, default=2.0, help="seconds Redis stays down (default 2)")
    parser.add_argument("--report", help="also write the report (Markdown) to this file")
    parser.add_argument("--keep", action="store_true", help="keep the logs and data directory")
    args = parser.parse_args()
    if args.duration < 10 or args.rate <= 0 or args.workers < 1:
        parser.error("--duration must be at least 10 s, --rate and --workers positive")
    args.load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    try:
        import uvloop

        return uvloop.run(soak(args))
    except ImportError:  # pragma: no cover
        return asyncio.run(soak(args))


if __name__ == "__main__":
    sys.exit(main())
