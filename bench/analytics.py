"""Analytics benchmark: counting throughput, end-to-end freshness, and stats query latency.

    .venv/bin/python bench/analytics.py [--events 1000000] [--rate 5000] [--seconds 20]
    .venv/bin/python bench/analytics.py --only-throughput --mixed --events 440000   (issue 15)
    .venv/bin/python bench/analytics.py --events-freshness --rate 50000 --seconds 15  (issue 15)

Self-contained: starts its own redis-server and `shoplink serve`, creates (and drops) a fresh
PostgreSQL database on 127.0.0.1:5432. Three measurements:

1. throughput: pre-load N click events (pipelined XADD), then time ONE `shoplink count` worker
   process (pinned to one core with taskset; redis-server on the other) until it has counted all;
2. freshness: a steady R events/s for S seconds while a worker runs (with roll-ups); probe events
   of one anchor are written ~5 times a second and the stats API is polled until each is visible;
3. queries: PostgreSQL rollups seeded directly with a year of history for a video (and 200 other
   videos), then the stats API timed for day/hour/minute series, heatmap and top-N.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson
from redis.asyncio import Redis

from shoplink import db
from shoplink.analytics.repository import COUNT_COLUMNS
from shoplink.auth.service import AuthService
from shoplink.ids import new_ulid

ADMIN_URL = os.environ.get("SHOPLINK_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SHARDS = 4
HAS_TASKSET = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def pinned(cpu: int, argv: list[str]) -> list[str]:
    return ["taskset", "-c", str(cpu), *argv] if HAS_TASKSET else argv


class Stack:
    """redis-server + a fresh database (+ the HTTP server when asked)."""

    def __init__(self) -> None:
        self.redis_port = free_port()
        self.http_port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="shoplink-bench-"))
        self.db_name = f"shoplink_bench_{secrets.token_hex(4)}"
        self.database_url = ADMIN_URL.rsplit("/", 1)[0] + "/" + self.db_name
        self.procs: list[asyncio.subprocess.Process] = []

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def env(self, **extra: str) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", ""), "SHOPLINK_DATABASE_URL": self.database_url,
               "SHOPLINK_REDIS_URL": self.redis_url, "SHOPLINK_LOG_LEVEL": "warning",
               "SHOPLINK_ACCESS_LOG": "false", "SHOPLINK_CLICK_SHARDS": str(SHARDS),
               "SHOPLINK_RATE_LIMITS": "false",
               "SHOPLINK_SECRET_KEY": "bench-secret-key-0123456789", "SHOPLINK_HOST": "127.0.0.1",
               "SHOPLINK_PORT": str(self.http_port)}
        env.update(extra)
        return env

    async def start(self) -> None:
        self.procs.append(await asyncio.create_subprocess_exec(
            *pinned(0, ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
                        "--appendonly", "no", "--dir", str(self.dir), "--loglevel", "warning"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        con = await asyncpg.connect(ADMIN_URL)
        try:
            await con.execute(f'CREATE DATABASE "{self.db_name}"')
        finally:
            await con.close()
        con = await db.connect(self.database_url)
        try:
            await db.migrate(con)
        finally:
            await con.close()
        for _ in range(200):
            try:
                r = Redis.from_url(self.redis_url)
                await r.ping()
                await r.aclose()
                return
            except OSError:
                await asyncio.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    async def serve(self) -> None:
        self.procs.append(await asyncio.create_subprocess_exec(
            sys.executable, "-m", "shoplink", "serve", env=self.env(),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                try:
                    async with http.get(f"http://127.0.0.1:{self.http_port}/healthz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise RuntimeError("shoplink serve did not start")

    async def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), timeout=10)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
        con = await asyncpg.connect(ADMIN_URL)
        try:
            await con.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
        finally:
            await con.close()
        shutil.rmtree(self.dir, ignore_errors=True)


CLASSES = ["human"] * 85 + ["bot"] * 10 + ["link_preview"] * 5
OUTCOMES = ["redirected"] * 90 + ["fallback"] * 6 + ["gone"] * 2 + ["not_found"] * 2


def make_event(rng: random.Random, ts_ms: int, anchor: int | None = None) -> dict[str, Any]:
    anchor = anchor if anchor is not None else rng.randrange(1, 2001)
    video = 1000 + anchor % 200
    product = 1 + anchor % 500
    return {"schema_version": 1, "event_id": new_ulid(ts_ms), "ts_ms": ts_ms, "code": f"c{anchor:07d}",
            "outcome": rng.choice(OUTCOMES), "surface": "video", "anchor_id": anchor, "video_id": video,
            "live_session_id": None, "playback_s": round(rng.uniform(0, 60), 2), "t_status": "ok",
            "product_id": product, "shop_id": 1 + product % 50, "creator_id": 1 + video % 100,
            "plan_id": (1 + anchor % 20) if anchor % 5 == 0 else None,
            "commission": {"rate_bp": 800, "source": "plan_rate"} if anchor % 5 == 0 else None,
            "viewer": f"{rng.getrandbits(128):032x}"[:32] if rng.random() < 0.5
            else f"{rng.randrange(200_000):032x}",
            "new_viewer": False, "net": None, "ua_class": rng.choice(CLASSES), "ua_family": None,
            "referrer_host": "social.example", "replayed": False}


async def preload(redis_url: str, n: int) -> float:
    """XADD n events, pipelined on a raw connection (RESP built in one pass per chunk)."""
    from shoplink.resp import pack

    rng = random.Random(7)
    now = int(time.time() * 1000)
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    t0 = time.perf_counter()
    chunk = 20_000
    try:
        for start in range(0, n, chunk):
            count = min(n, start + chunk) - start
            buf = []
            for i in range(start, start + count):
                ev = make_event(rng, now - 3_600_000 + i * 3_600_000 // n)
                buf.append(pack(["XADD", f"shoplink:clicks:{{{ev['anchor_id'] % SHARDS}}}", "*", "e",
                                 orjson.dumps(ev)]))
            writer.write(b"".join(buf))
            await writer.drain()
            need, seen, tail = 2 * count, 0, b""
            while seen < need:  # each reply is "$<len>\r\n<id>\r\n"
                data = await reader.read(1 << 20)
                if not data:
                    raise RuntimeError("redis closed the connection")
                if data.startswith(b"-") or b"\r\n-" in data:
                    raise RuntimeError(data[:200].decode(errors="replace"))
                seen += (tail + data).count(b"\r\n") - tail.count(b"\r\n")
                tail = data[-1:]
    finally:
        writer.close()
        await writer.wait_closed()
    return time.perf_counter() - t0


def make_batch(rng: random.Random, ts_ms: int, impressions: int = 20) -> dict[str, Any]:
    """One page view's beacon as the event stream holds it: `impressions` card impressions (of
    distinct anchors, entities as make_event's) and one video view."""
    events = []
    for anchor in rng.sample(range(1, 2001), impressions):
        video = 1000 + anchor % 200
        product = 1 + anchor % 500
        events.append({"type": "impression", "code": f"c{anchor:07d}", "anchor_id": anchor, "video_id": video,
                       "live_session_id": None, "product_id": product, "shop_id": 1 + product % 50,
                       "creator_id": 1 + video % 100, "plan_id": (1 + anchor % 20) if anchor % 5 == 0 else None,
                       "playback_s": round(rng.uniform(0, 60), 2), "quartile": None})
    video = events[0]["video_id"]
    events.append({"type": "view", "code": None, "anchor_id": None, "video_id": video, "live_session_id": None,
                   "product_id": None, "shop_id": None, "creator_id": 1 + video % 100, "plan_id": None,
                   "playback_s": 0.0, "quartile": None})
    return {"schema_version": 1, "batch_id": new_ulid(ts_ms), "ts_ms": ts_ms,
            "viewer": f"{rng.getrandbits(128):032x}"[:32], "ua_class": rng.choice(CLASSES),
            "page_view": f"{rng.getrandbits(64):016x}", "referrer_host": "shop.example", "events": events}


async def preload_mixed(redis_url: str, n: int) -> tuple[float, int]:
    """n events as 20 impressions : 1 view : 1 click: n // 22 clicks on the click streams and as
    many page-view batches (20 impressions + 1 view) on the event streams. (seconds, events)."""
    from shoplink.resp import pack

    rng = random.Random(11)
    now = int(time.time() * 1000)
    pages = n // 22
    port = int(redis_url.rsplit(":", 1)[1].split("/")[0])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    t0 = time.perf_counter()
    chunk = 2000
    try:
        for start in range(0, pages, chunk):
            count = min(pages, start + chunk) - start
            buf = []
            for i in range(start, start + count):
                ts = now - 3_600_000 + i * 3_600_000 // pages
                ev = make_event(rng, ts)
                buf.append(pack(["XADD", f"shoplink:clicks:{{{ev['anchor_id'] % SHARDS}}}", "*", "e",
                                 orjson.dumps(ev)]))
                buf.append(pack(["XADD", f"shoplink:events:{{{i % SHARDS}}}", "*", "e",
                                 orjson.dumps(make_batch(rng, ts))]))
            writer.write(b"".join(buf))
            await writer.drain()
            need, seen, tail = 4 * count, 0, b""
            while seen < need:
                data = await reader.read(1 << 20)
                if not data:
                    raise RuntimeError("redis closed the connection")
                if data.startswith(b"-") or b"\r\n-" in data:
                    raise RuntimeError(data[:200].decode(errors="replace"))
                seen += (tail + data).count(b"\r\n") - tail.count(b"\r\n")
                tail = data[-1:]
    finally:
        writer.close()
        await writer.wait_closed()
    return time.perf_counter() - t0, pages * 22


NAIVE = """
import sys, time, orjson, redis
r = redis.Redis.from_url(sys.argv[1])
shards, n = int(sys.argv[2]), 0
families = ("clicks", "events")
for f in families:
    for s in range(shards):
        try:
            r.xgroup_create(f"shoplink:{f}:{{{s}}}", "naive", id="0", mkstream=True)
        except redis.ResponseError:
            pass
t0 = time.perf_counter()
while True:
    got = 0
    for f in families:
        for s in range(shards):
            stream = f"shoplink:{f}:{{{s}}}"
            reply = r.xreadgroup("naive", "c", {stream: ">"}, count=1000)
            entries = reply[0][1] if reply else []
            if not entries:
                continue
            pipe = r.pipeline(transaction=False)
            for sid, fields in entries:
                ev = orjson.loads(fields[b"e"])
                if f == "clicks":
                    got += 1
                    pipe.hincrby(f"naive:{{{s}}}:{ev['anchor_id']}", f"{ev['ts_ms'] // 60000}:{ev['ua_class']}", 1)
                    continue
                for e in ev["events"]:  # one HINCRBY per player event
                    got += 1
                    pipe.hincrby(f"naive:{{{s}}}:{e['anchor_id'] or e['video_id']}",
                                 f"{ev['ts_ms'] // 60000}:{ev['ua_class']}:{e['type']}", 1)
            pipe.xack(stream, "naive", *[e[0] for e in entries])
            pipe.execute()
    n += got
    if not got:
        break
print(n / (time.perf_counter() - t0), n / time.process_time())
"""


async def naive_baseline(stack: Stack, redis: Redis, n: int) -> tuple[float, float, float]:
    """A plain redis-py consumer doing one HINCRBY per event (pipelined per batch), same machine:
    (events/s wall, events per CPU second, Redis CPU µs per event)."""
    cpu = await redis.info("cpu")
    before = cpu["used_cpu_user"] + cpu["used_cpu_sys"]
    out = await asyncio.to_thread(subprocess.run, pinned(1, [sys.executable, "-c", NAIVE, stack.redis_url,
                                                             str(SHARDS)]), capture_output=True, check=True)
    cpu = await redis.info("cpu")
    wall, worker_cpu = out.stdout.split()
    return float(wall), float(worker_cpu), (cpu["used_cpu_user"] + cpu["used_cpu_sys"] - before) / n * 1e6


def run_worker(stack: Stack, *extra: str, batch: int = 1000, workers: int = 1,
               chunk: int | None = None) -> tuple[float, dict[str, Any]]:
    t0 = time.perf_counter()
    # As deployed: the worker also moves its counters into PostgreSQL (every 5 s here) and unions
    # its HyperLogLogs into PostgreSQL (every SHOPLINK_COUNT_UNIQUES_INTERVAL_S, 60 s: a cost per
    # interval, not per event, measured on its own by `union_pass`).
    # One worker is pinned to cpu 1; several workers are left to the scheduler (2 vCPUs).
    argv = [sys.executable, "-m", "shoplink", "count", "--exit-when-idle", *extra]
    env = stack.env(SHOPLINK_COUNT_BLOCK_MS="100", SHOPLINK_COUNT_BATCH=str(batch),
                    SHOPLINK_COUNT_ROLLUP_INTERVAL_S="5",
                    **({"SHOPLINK_COUNT_APPLY_CHUNK": str(chunk)} if chunk else {}))
    procs = [subprocess.Popen(pinned(1, argv) if workers == 1 else argv, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
             for _ in range(workers)]
    outs = [orjson.loads(p.communicate()[0]) for p in procs]
    if any(p.returncode for p in procs):
        raise RuntimeError(f"count worker failed: {[p.returncode for p in procs]}")
    stats = {"applied": sum(o["applied"] for o in outs), "cpu_s": sum(o["cpu_s"] for o in outs)}
    return time.perf_counter() - t0, stats


async def union_pass(stack: Stack, redis: Redis) -> dict[str, Any]:
    """One `shoplink count --rollup` after the counting run: it unions every HyperLogLog the run
    wrote (no union ran during it) into PostgreSQL, i.e. one uniques interval's work."""
    import resource

    dirty = sum([await redis.scard(f"sla:{{{s}}}:udirty") for s in range(SHARDS)])
    cpu = await redis.info("cpu")
    before = cpu["used_cpu_user"] + cpu["used_cpu_sys"]
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = await asyncio.to_thread(subprocess.run, pinned(1, [sys.executable, "-m", "shoplink", "count",
                                                             "--rollup"]),
                                  env=stack.env(), capture_output=True, check=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = await redis.info("cpu")
    return {"hlls": dirty, "entity_days": orjson.loads(out.stdout)["uniques"], "wall_s": wall,
            "process_cpu_s": after.ru_utime + after.ru_stime - child.ru_utime - child.ru_stime,
            "redis_cpu_s": cpu["used_cpu_user"] + cpu["used_cpu_sys"] - before}


async def throughput(stack: Stack, redis: Redis, n: int, batch: int, workers: int = 1,
                     chunk: int | None = None, mixed: bool = False) -> dict[str, Any]:
    for shard in range(SHARDS):  # the group exists before the load, as with a running deployment
        for family in ("clicks", "events"):
            await redis.xgroup_create(f"shoplink:{family}:{{{shard}}}", "counters", id="0", mkstream=True)
    # process start-up + one idle pass, measured alone
    empty_s, empty = await asyncio.to_thread(run_worker, stack, batch=batch, chunk=chunk)
    if mixed:
        load_s, n = await preload_mixed(stack.redis_url, n)
    else:
        load_s = await preload(stack.redis_url, n)
    memory_before = (await redis.info("memory"))["used_memory"]
    cpu = await redis.info("cpu")
    redis_cpu_before = cpu["used_cpu_user"] + cpu["used_cpu_sys"]
    await redis.config_resetstat()
    total_s, stats = await asyncio.to_thread(run_worker, stack, batch=batch, workers=workers, chunk=chunk)
    commands = await redis.info("commandstats")
    cpu = await redis.info("cpu")
    redis_cpu = cpu["used_cpu_user"] + cpu["used_cpu_sys"] - redis_cpu_before
    assert stats["applied"] == n, stats
    counting_s = total_s - empty_s
    worker_cpu = stats["cpu_s"] - empty["cpu_s"]
    result = {"events": n, "batch": batch, "preload_s": load_s, "preload_rate": n / load_s,
              "worker_total_s": total_s, "startup_s": empty_s, "counting_s": counting_s,
              "rate": n / counting_s, "worker_cpu_s": worker_cpu, "cpu_rate": n / worker_cpu,
              "redis_cpu_s": redis_cpu, "redis_us_per_event": redis_cpu / n * 1e6,
              "counter_memory_mb": ((await redis.info("memory"))["used_memory"] - memory_before) / 1e6}
    result["naive_rate"], result["naive_cpu_rate"], result["naive_redis_us"] = await naive_baseline(
        stack, redis, n)
    result["union"] = await union_pass(stack, redis)
    result["redis_commands"] = sorted(((name.removeprefix("cmdstat_"), v["usec"] / n, v["calls"])
                                       for name, v in commands.items()), key=lambda x: -x[1])[:8]
    return result


async def seed_accounts(pool: asyncpg.Pool) -> tuple[str, int, int]:
    """An analyst token, and one real anchor (for probes) and video (for history)."""
    _, token = await AuthService(pool).create_account("bench-analyst", ["analyst"])
    creator, _ = await AuthService(pool).create_account("bench-creator", ["creator"])
    async with pool.acquire() as con:
        shop = await con.fetchval("INSERT INTO shops (owner_id, name) VALUES ($1, 's') RETURNING id",
                                  creator.id)
        product = await con.fetchval(
            "INSERT INTO products (shop_id, title, url) VALUES ($1, 'p', 'https://s.example/p') RETURNING id",
            shop)
        video = await con.fetchval(
            """INSERT INTO videos (owner_id, title, file_path, size_bytes, duration_s, fps, frame_count,
                                   width, height, codec)
               VALUES ($1, 'v', '/v', 1, 60, 30, 1800, 64, 36, 'h264')
               RETURNING id""", creator.id)
        anchor = await con.fetchval(
            """INSERT INTO anchors (code, surface, video_id, product_id, publisher_id, start_s, end_s)
               VALUES ('probe0001', 'video', $1, $2, $3, 0, 10) RETURNING id""", video, product, creator.id)
    return token.token, anchor, video


async def _measure_freshness(stack: Stack, redis: Redis, token: str, probe_anchor: int, rate: int,
                             seconds: float, *, unit: int, add: Callable[[Any, int, int], None],
                             send_probe: Callable[[aiohttp.ClientSession], Awaitable[float]],
                             counted: Callable[[dict[str, Any], int], bool]) -> dict[str, Any]:
    """The run both freshness measurements share: a `shoplink count` worker (roll-ups every 5 s)
    while a steady `rate` events/s is written straight to the streams, as entries of `unit`
    events (`add(pipeline, n, now_ms)` adds the n-th; kept on schedule, no rounding drift), and
    five times a second a probe is sent (`send_probe(http)`, which returns when its latency
    starts) and the probe anchor's stats polled until `counted(stats, probes sent)`."""
    worker = await asyncio.create_subprocess_exec(
        *pinned(1, [sys.executable, "-m", "shoplink", "count"]),
        env=stack.env(SHOPLINK_COUNT_ROLLUP_INTERVAL_S="5"), stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    stack.procs.append(worker)
    await asyncio.sleep(1.0)
    stop = time.perf_counter() + seconds
    written = 0

    async def background() -> None:
        nonlocal written
        tick = 0.02
        began = next_t = time.perf_counter()
        n = 0
        while time.perf_counter() < stop:
            pipe = redis.pipeline(transaction=False)
            now = int(time.time() * 1000)
            due = max(1, round(rate * (next_t + tick - began) / unit) - n)
            for _ in range(due):
                n += 1
                add(pipe, n, now)
            await pipe.execute()
            written += due * unit
            next_t += tick
            await asyncio.sleep(max(0.0, next_t - time.perf_counter()))

    latencies: list[float] = []
    url = (f"http://127.0.0.1:{stack.http_port}/api/v1/stats/anchors/{probe_anchor}"
           f"?granularity=hour&from={int(time.time()) - 7200}")
    headers = {"Authorization": f"Bearer {token}"}

    async def probes(http: aiohttp.ClientSession) -> None:
        sent = 0
        while time.perf_counter() < stop:
            slot = time.perf_counter() + 0.2
            t0 = await send_probe(http)
            sent += 1
            while True:
                async with http.get(url, headers=headers) as resp:
                    doc = await resp.json()
                if counted(doc, sent):
                    break
                await asyncio.sleep(0.005)
            latencies.append(time.perf_counter() - t0)
            await asyncio.sleep(max(0.0, slot - time.perf_counter()))

    async with aiohttp.ClientSession() as http:
        t_start = time.perf_counter()
        await asyncio.gather(background(), probes(http))
        elapsed = time.perf_counter() - t_start
    worker.terminate()
    await asyncio.wait_for(worker.wait(), timeout=20)
    latencies.sort()
    return {"rate_target": rate, "rate_achieved": written / elapsed, "seconds": elapsed,
            "probes": len(latencies), "p50_ms": 1000 * statistics.median(latencies),
            "p99_ms": 1000 * latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
            "max_ms": 1000 * latencies[-1]}


async def freshness(stack: Stack, redis: Redis, token: str, probe_anchor: int, rate: int,
                    seconds: float) -> dict[str, Any]:
    """Clicks: a steady `rate` clicks/s on the click streams; a probe click on the probe anchor,
    timed from before its XADD until the stats API counts it."""
    rng = random.Random(11)

    def add(pipe: Any, n: int, now: int) -> None:
        ev = make_event(rng, now, anchor=rng.randrange(10_000, 12_000))
        pipe.xadd(f"shoplink:clicks:{{{ev['anchor_id'] % SHARDS}}}", {"e": orjson.dumps(ev)})

    async def send_probe(http: aiohttp.ClientSession) -> float:
        ev = make_event(rng, int(time.time() * 1000), anchor=probe_anchor)
        ev.update({"surface": "video", "video_id": 999_999, "ua_class": "human"})
        t0 = time.perf_counter()
        await redis.xadd(f"shoplink:clicks:{{{probe_anchor % SHARDS}}}", {"e": orjson.dumps(ev)})
        return t0

    return await _measure_freshness(stack, redis, token, probe_anchor, rate, seconds, unit=1, add=add,
                                    send_probe=send_probe,
                                    counted=lambda doc, sent: bool(doc["totals"]["clicks"] >= sent))


async def beacon_freshness(stack: Stack, redis: Redis, token: str, probe_anchor: int, rate: int,
                           seconds: float) -> dict[str, Any]:
    """The player's events: a steady `rate` events/s of page-view batches (20 impressions + 1
    view, XADD straight to shoplink:events:{n}: a 2-core machine cannot also run the HTTP load)
    while a worker counts; ~5 times a second a probe beacon (one impression of the probe anchor's
    card, a new page view) is POSTed to /v1/events, and the time from its 204 until the stats API
    counts it is measured."""
    rng = random.Random(13)
    # The events of 256 page views, encoded once; each batch gets its own id, time, viewer and
    # page view (building and encoding each batch anew capped the generator at ~42,000 events/s).
    pool = [orjson.dumps(make_batch(rng, 0)["events"]) for _ in range(256)]
    shape = (b'{"schema_version":1,"batch_id":"%s","ts_ms":%d,"viewer":"%032x","ua_class":"%s",'
             b'"page_view":"%016x","referrer_host":"shop.example","events":%s}')
    classes = [c.encode() for c in CLASSES]
    beacon_headers = {"Content-Type": "text/plain", "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120"}

    def add(pipe: Any, n: int, now: int) -> None:
        batch = shape % (new_ulid(now).encode(), now, rng.getrandbits(128), classes[n % len(classes)],
                         rng.getrandbits(64), pool[n % len(pool)])
        pipe.xadd(f"shoplink:events:{{{n % SHARDS}}}", {"e": batch})

    async def send_probe(http: aiohttp.ClientSession) -> float:
        body = orjson.dumps({"pv": f"probe{rng.getrandbits(64):016x}",
                             "events": [{"type": "impression", "code": "probe0001", "t": 1.0}]})
        async with http.post(f"http://127.0.0.1:{stack.http_port}/v1/events", data=body,
                             headers=beacon_headers) as resp:
            assert resp.status == 204, resp.status
        return time.perf_counter()

    return await _measure_freshness(
        stack, redis, token, probe_anchor, rate, seconds, unit=21, add=add, send_probe=send_probe,
        counted=lambda doc, sent: bool(doc["funnel"]["impressions"]["total"] >= sent))


async def seed_history(pool: asyncpg.Pool, redis: Redis, video: int) -> dict[str, int]:
    """A year of day rows, 90 days of hours, 48 h of minutes for the video and 200 others."""
    rng = random.Random(3)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    now_hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    now_min = datetime.now(UTC).replace(second=0, microsecond=0)
    rows: list[tuple[Any, ...]] = []
    for vid in [video, *range(100_000, 100_200)]:
        for d in range(365):
            rows.append(("video", vid, "day", today - timedelta(days=d),
                         *[rng.randrange(50) for _ in COUNT_COLUMNS]))
        for h in range(90 * 24):
            rows.append(("video", vid, "hour", now_hour - timedelta(hours=h),
                         *[rng.randrange(5) for _ in COUNT_COLUMNS]))
        if vid == video:
            for m in range(48 * 60):
                rows.append(("video", vid, "minute", now_min - timedelta(minutes=m),
                             *[rng.randrange(2) for _ in COUNT_COLUMNS]))
    hll_rows = []
    for d in range(365):
        key = "bench:{0}:hll"
        await redis.delete(key)
        await redis.pfadd(key, *[f"{rng.getrandbits(64):032x}" for _ in range(300)])
        blob = await redis.get(key)
        hll_rows.append(("video", video, today - timedelta(days=d), blob, await redis.pfcount(key)))
    async with pool.acquire() as con:
        for table in ("click_counts", "click_uniques"):
            await con.execute(f"DELETE FROM {table} WHERE entity_kind = 'video' AND entity_id = $1", video)
        await con.copy_records_to_table("click_counts", records=rows,
                                        columns=["entity_kind", "entity_id", "granularity", "bucket",
                                                 *COUNT_COLUMNS])
        await con.copy_records_to_table("click_uniques", records=hll_rows,
                                        columns=["entity_kind", "entity_id", "day", "hll", "viewers"])
        await con.copy_records_to_table("click_heatmap", records=[(video, s, rng.randrange(1000))
                                                                  for s in range(60)])
        await con.copy_records_to_table("click_top", records=[("video", video, a, rng.randrange(10_000))
                                                              for a in range(1, 31)])
        await con.execute("ANALYZE")
    return {"count_rows": len(rows), "uniques_rows": len(hll_rows)}


async def queries(stack: Stack, token: str, video: int, repeat: int = 40) -> list[dict[str, Any]]:
    now = int(time.time())
    cases = {
        "day series, 1 year": f"/api/v1/stats/videos/{video}?granularity=day&from={now - 365 * 86400}",
        "hour series, 90 days": f"/api/v1/stats/videos/{video}?granularity=hour&from={now - 89 * 86400}",
        "minute series, 48 h": f"/api/v1/stats/videos/{video}?granularity=minute&from={now - 47 * 3600}",
        "day series, 1 year, CSV": f"/api/v1/stats/videos/{video}.csv?granularity=day"
                                   f"&from={now - 365 * 86400}",
        "heatmap": f"/api/v1/stats/videos/{video}/heatmap",
        "top anchors": f"/api/v1/stats/videos/{video}/top-anchors",
    }
    out = []
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as http:
        for name, path in cases.items():
            times = []
            for i in range(repeat + 3):
                t0 = time.perf_counter()
                async with http.get(f"http://127.0.0.1:{stack.http_port}{path}", headers=headers) as resp:
                    await resp.read()
                    assert resp.status == 200, (path, resp.status)
                if i >= 3:
                    times.append(time.perf_counter() - t0)
            times.sort()
            out.append({"query": name, "p50_ms": 1000 * statistics.median(times),
                        "p99_ms": 1000 * times[min(len(times) - 1, int(len(times) * 0.99))]})
    return out


async def print_queries(stack: Stack, pool: asyncpg.Pool, redis: Redis, token: str, video: int) -> None:
    seeded = await seed_history(pool, redis, video)
    q = await queries(stack, token, video)
    print(f"\n## Stats queries, a video with a year of history ({seeded['count_rows']:,} rollup rows "
          f"seeded, {seeded['uniques_rows']} daily HyperLogLogs for the video)")
    print("| query | p50 | p99 |")
    print("|---|---:|---:|")
    for row in q:
        print(f"| {row['query']} | {row['p50_ms']:.1f} ms | {row['p99_ms']:.1f} ms |")


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--batch", type=int, default=20000,
                        help="SHOPLINK_COUNT_BATCH of the worker (default: the setting's default)")
    parser.add_argument("--chunk", type=int, default=None,
                        help="SHOPLINK_COUNT_APPLY_CHUNK of the worker (default: the setting's default)")
    parser.add_argument("--only-throughput", action="store_true")
    parser.add_argument("--events-freshness", action="store_true",
                        help="only: the player's events, beacon 204 -> stats API, at --rate events/s")
    parser.add_argument("--mixed", action="store_true",
                        help="count 20 impressions : 1 view : 1 click (the player's event streams beside the clicks)")
    parser.add_argument("--only-queries", action="store_true", help="section 3 (stats query latency) only")
    parser.add_argument("--workers", type=int, default=1, help="count worker processes (1 is pinned to cpu 1)")
    parser.add_argument("--dense-hll", action="store_true",
                        help="run the bench's redis-server with hll-sparse-max-bytes 0 (dense HyperLogLogs)")
    args = parser.parse_args()
    stack = Stack()
    await stack.start()
    redis = Redis.from_url(stack.redis_url)
    pool = await db.create_pool(stack.database_url, min_size=1, max_size=2)
    try:
        if args.dense_hll:
            await redis.config_set("hll-sparse-max-bytes", 0)
            print("redis-server: hll-sparse-max-bytes 0 (every HyperLogLog dense, 12 KB)")
        print(f"taskset pinning: {'yes (redis-server: cpu 0, worker: cpu 1)' if HAS_TASKSET else 'no'}")
        if args.events_freshness:
            token, probe_anchor, _ = await seed_accounts(pool)
            await stack.serve()
            f = await beacon_freshness(stack, redis, token, probe_anchor, args.rate, args.seconds)
            print("\n## Freshness of the player's events (beacon 204 -> visible in the stats API)")
            print("| load | duration | probes | p50 | p99 | max |")
            print("|---:|---:|---:|---:|---:|---:|")
            print(f"| {f['rate_achieved']:,.0f} events/s (target {f['rate_target']:,}) | {f['seconds']:.1f} s | "
                  f"{f['probes']} | {f['p50_ms']:.1f} ms | {f['p99_ms']:.1f} ms | {f['max_ms']:.1f} ms |")
            return 0
        if args.only_queries:
            token, _, video = await seed_accounts(pool)
            await stack.serve()
            await print_queries(stack, pool, redis, token, video)
            return 0
        t = await throughput(stack, redis, args.events, args.batch, args.workers, args.chunk, args.mixed)
        if args.mixed:
            print("mix: 20 impressions : 1 view : 1 click (one 21-event batch per page view on "
                  "shoplink:events:{n}, clicks on shoplink:clicks:{n})")
        print(f"\n## Counting throughput ({args.workers} worker process(es))")
        print(f"pre-load: {t['events']:,} events in {t['preload_s']:.1f} s ({t['preload_rate']:,.0f}/s)")
        print("| events | batch | worker wall time | start-up (empty run) | counting time | "
              "events/s (wall) | "
              "worker CPU | events per worker-CPU-second | Redis CPU per event | "
              "naive consumer (wall / per CPU-s) | "
              "Redis memory of counters + dedup |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        print(f"| {t['events']:,} | {t['batch']} | {t['worker_total_s']:.2f} s | {t['startup_s']:.2f} s | "
              f"{t['counting_s']:.2f} s | **{t['rate']:,.0f}** | {t['worker_cpu_s']:.2f} s | "
              f"{t['cpu_rate']:,.0f} | {t['redis_us_per_event']:.1f} µs | "
              f"{t['naive_rate']:,.0f} / {t['naive_cpu_rate']:,.0f} | "
              f"{t['counter_memory_mb']:.0f} MB |")
        print("\nRedis time per event by command (commandstats; EVALSHA includes the commands it calls):")
        print(", ".join(f"{name} {us:.2f} µs ({calls:,} calls)" for name, us, calls in t["redis_commands"]))
        print(f"Naive consumer: Redis CPU {t['naive_redis_us']:.1f} µs per event.")
        print(f"Ratio, exactly-once worker / naive consumer (events/s, wall): "
              f"**{t['rate'] / t['naive_rate']:.2f}x**; per CPU-second: {t['cpu_rate'] / t['naive_cpu_rate']:.2f}x")
        u = t["union"]
        print(f"Uniques union pass afterwards (`shoplink count --rollup`, the work of one "
              f"SHOPLINK_COUNT_UNIQUES_INTERVAL_S): {u['hlls']:,} combo HyperLogLogs into "
              f"{u['entity_days']:,} entity-days in {u['wall_s']:.2f} s wall, process CPU "
              f"{u['process_cpu_s']:.2f} s, Redis CPU {u['redis_cpu_s']:.2f} s.")
        if args.only_throughput:
            return 0
        await redis.flushall()
        token, probe_anchor, video = await seed_accounts(pool)
        await stack.serve()
        f = await freshness(stack, redis, token, probe_anchor, args.rate, args.seconds)
        print("\n## Freshness (event written -> visible in GET /api/v1/stats/anchors/{id})")
        print("| load | duration | probes | p50 | p99 | max |")
        print("|---:|---:|---:|---:|---:|---:|")
        print(f"| {f['rate_achieved']:,.0f} events/s (target {f['rate_target']:,}) | {f['seconds']:.1f} s | "
              f"{f['probes']} | {f['p50_ms']:.1f} ms | **{f['p99_ms']:.1f} ms** | {f['max_ms']:.1f} ms |")
        await print_queries(stack, pool, redis, token, video)
    finally:
        await pool.close()
        await redis.aclose()
        await stack.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
