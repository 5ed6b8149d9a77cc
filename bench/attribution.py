"""Throughput of the attribution consumer: click events from 4 streams into PostgreSQL.

Self-contained: starts a private redis-server, creates and migrates a fresh database on the local
PostgreSQL (SHOPLINK_TEST_DATABASE_URL or postgresql://postgres@127.0.0.1:5432/postgres), writes
N schema-shaped click events with XADD, runs one consumer (one task per shard) until all are stored,
then writes the same events again (a spool replay) and measures the duplicate path. Cleans up.
`--plan-share S`: only that share of the events carries a plan (the rest are clicks the
consumer acknowledges without storing, as most clicks are): what the consumer adds per click to
the `shoplink count` process it runs in. CPU is this process's (the consumer and its
client; the progress polls are a small part).

    .venv/bin/python bench/attribution.py [N] [--plan-share 1.0]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time

import asyncpg
import orjson
from redis.asyncio import Redis

from shoplink import db
from shoplink.affiliates.attribution import AttributionConsumer
from shoplink.ids import new_ulid
from shoplink.streams import stream_key

SHARDS = 4
ADMIN = os.environ.get("SHOPLINK_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _event(n: int, now_ms: int, plan_share: float) -> dict[str, object]:
    planned = (n % 1000) < plan_share * 1000
    return {"schema_version": 1, "event_id": new_ulid(now_ms), "ts_ms": now_ms, "code": f"c{n:08d}",
            "outcome": "redirected", "surface": "video", "anchor_id": n, "video_id": 1,
            "live_session_id": None, "playback_s": 3.0, "t_status": "ok", "product_id": 1,
            "shop_id": 1, "creator_id": 2, "plan_id": 1 + n % 5 if planned else None,
            "commission": {"rate_bp": 1000, "source": "plan_rate"} if planned else None,
            "viewer": secrets.token_hex(16), "ua_class": "human"}


async def _fill(redis: Redis, events: list[dict[str, object]]) -> None:
    pipe = redis.pipeline(transaction=False)
    for i, event in enumerate(events):
        pipe.xadd(stream_key(int(event["anchor_id"]) % SHARDS), {"e": orjson.dumps(event)})  # type: ignore[call-overload]
        if i % 1000 == 999:
            await pipe.execute()
    await pipe.execute()


async def _drain(consumer: AttributionConsumer, redis: Redis, total: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) until every entry is acknowledged."""
    start = time.perf_counter()
    cpu = time.process_time()
    task = asyncio.create_task(consumer.run())
    try:
        async with asyncio.timeout(120):
            while True:
                pending = 0
                for n in range(SHARDS):
                    groups = await redis.xinfo_groups(stream_key(n))
                    lag = groups[0].get("lag") if groups else None
                    pending += int(groups[0]["pending"]) + int(lag or 0) if groups else total
                if pending == 0:
                    break
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return time.perf_counter() - start, time.process_time() - cpu


def _start_redis(port: int, workdir: str) -> subprocess.Popen[bytes]:
    redis_bin = shutil.which("redis-server") or "redis-server"
    proc = subprocess.Popen([redis_bin, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", workdir], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return proc
        except OSError:
            time.sleep(0.02)
    proc.kill()
    raise RuntimeError("redis-server did not start")


async def main(n: int, port: int, plan_share: float) -> None:
    name = f"shoplink_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = ADMIN.rsplit("/", 1)[0] + "/" + name
    try:
        con = await db.connect(url)
        await db.migrate(con)
        await con.close()
        redis = Redis.from_url(f"redis://127.0.0.1:{port}/0")
        pool = await db.create_pool(url, min_size=2, max_size=4)
        now_ms = int(time.time() * 1000)
        events = [_event(i, now_ms, plan_share) for i in range(n)]
        consumer = AttributionConsumer(redis, pool, shards=SHARDS, name="bench")
        for shard in range(SHARDS):
            await consumer.ensure_group(shard)
        await _fill(redis, events)
        first, first_cpu = await _drain(consumer, redis, n)
        stored = await pool.fetchval("SELECT count(*) FROM attributed_clicks")
        await _fill(redis, events)  # the same events again: all duplicates
        second, second_cpu = await _drain(consumer, redis, n)
        stored_after = await pool.fetchval("SELECT count(*) FROM attributed_clicks")
        print(f"events with a plan: {plan_share:.0%}")
        print("| run | events | seconds | events/s | CPU µs/event | rows in PostgreSQL |")
        print("|---|---:|---:|---:|---:|---:|")
        print(f"| new clicks | {n} | {first:.2f} | {n / first:,.0f} | {first_cpu / n * 1e6:.1f} | {stored} |")
        print(f"| replay (duplicates) | {n} | {second:.2f} | {n / second:,.0f} | "
              f"{second_cpu / n * 1e6:.1f} | {stored_after} |")
        await pool.close()
        await redis.aclose()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    redis_port = _free_port()
    redis_dir = tempfile.mkdtemp(prefix="bench-attr-")
    redis_proc = _start_redis(redis_port, redis_dir)
    try:
        parser = argparse.ArgumentParser(description=__doc__,
                                         formatter_class=argparse.RawDescriptionHelpFormatter)
        parser.add_argument("events", type=int, nargs="?", default=20_000)
        parser.add_argument("--plan-share", type=float, default=1.0,
                            help="share of events that carry a plan (0..1)")
        args = parser.parse_args()
        asyncio.run(main(args.events, redis_port, args.plan_share))
    finally:
        redis_proc.kill()
        redis_proc.wait()
        shutil.rmtree(redis_dir, ignore_errors=True)
