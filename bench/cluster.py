"""One Redis vs a 3-node Redis Cluster: the click writer and the count worker, CPU per event.

    .venv/bin/python bench/cluster.py [--events 200000] [--shards 12]

Self-contained: starts a single redis-server and a 3-node cluster (tests/support/cluster.py) on
loopback ports, no PostgreSQL (the worker runs without roll-ups). For each topology:

1. writer: N schema-valid events recorded into a `ClickWriter` (default batch and flush settings)
   as fast as the loop allows, until all are acknowledged;
2. count: one in-process `CountWorker` (--exit-when-idle semantics) counts them.

Reported per phase: events/s (wall), this process' CPU µs per event (`time.process_time`), and
Redis CPU µs per event (sum over the nodes of INFO used_cpu_user + used_cpu_sys). On a 2-core
machine shared with other work the wall figures move; the CPU figures are the ones to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from redis.asyncio import Redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from shoplink.analytics.consumer import CountWorker  # noqa: E402
from shoplink.config import Settings  # noqa: E402
from shoplink.delivery.writer import ClickWriter  # noqa: E402
from shoplink.ids import new_ulid  # noqa: E402
from shoplink.redis import RedisTopology  # noqa: E402

from support.cluster import RedisCluster3  # noqa: E402
from support.services import RedisProcess  # noqa: E402


def make_event(rng: random.Random, ts_ms: int, anchor: int) -> bytes:
    video = 1000 + anchor % 200
    product = 1 + anchor % 500
    return orjson.dumps({
        "schema_version": 1, "event_id": new_ulid(ts_ms), "ts_ms": ts_ms, "code": f"c{anchor:07d}",
        "outcome": "redirected", "surface": "video", "anchor_id": anchor, "video_id": video,
        "live_session_id": None, "playback_s": round(rng.uniform(0, 60), 2), "t_status": "ok",
        "product_id": product, "shop_id": 1 + product % 50, "creator_id": 1 + video % 100,
        "plan_id": None, "commission": None, "viewer": f"{rng.getrandbits(128):032x}",
        "new_viewer": False, "net": None, "ua_class": "human", "ua_family": None,
        "referrer_host": "social.example", "replayed": False})


async def redis_cpu(ports: list[int]) -> float:
    total = 0.0
    for port in ports:
        client = Redis(host="127.0.0.1", port=port)
        try:
            info = await client.info("cpu")
        finally:
            await client.aclose()
        total += float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    return total


async def measure(label: str, settings: Settings, ports: list[int], n: int, shards: int,
                  spool: Path) -> list[dict[str, Any]]:
    rng = random.Random(7)
    now = int(time.time() * 1000)
    events = [(anchor % shards, make_event(rng, now + i, anchor))
              for i, anchor in enumerate(rng.randrange(1, 2001) for _ in range(n))]
    topology = RedisTopology.from_settings(settings)
    await topology.connect()
    rows = []
    try:
        writer = ClickWriter(settings.redis_url, spool, router=topology, timeout_s=5.0)
        await writer.start()
        cpu0, rcpu0, t0 = time.process_time(), await redis_cpu(ports), time.perf_counter()
        for i, (shard, payload) in enumerate(events):
            writer.record(shard, payload)
            if i % 1000 == 999:
                await asyncio.sleep(0)
                while writer.buffered > 20_000:  # stay below the buffer limit (no spill)
                    await asyncio.sleep(0.001)
        while writer.written < n:
            await asyncio.sleep(0.005)
        wall, cpu, rcpu = time.perf_counter() - t0, time.process_time() - cpu0, await redis_cpu(ports) - rcpu0
        await writer.close()
        assert writer.spooled == 0, "the writer spooled: the measurement is not of Redis writes"
        rows.append({"topology": label, "phase": "write", "events_per_s": n / wall,
                     "process_us": cpu / n * 1e6, "redis_us": rcpu / n * 1e6})

        worker = CountWorker(settings.replace(count_block_ms=50), topology,
                             None,  # type: ignore[arg-type]  # rollups=False: no PostgreSQL
                             exit_when_idle=True, rollups=False, trims=False)
        cpu0, rcpu0, t0 = time.process_time(), await redis_cpu(ports), time.perf_counter()
        stats = await worker.run()
        wall, cpu, rcpu = time.perf_counter() - t0, time.process_time() - cpu0, await redis_cpu(ports) - rcpu0
        assert stats.applied == n, stats
        rows.append({"topology": label, "phase": "count", "events_per_s": n / wall,
                     "process_us": cpu / n * 1e6, "redis_us": rcpu / n * 1e6})
    finally:
        await topology.aclose()
    return rows


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--shards", type=int, default=12)
    args = parser.parse_args()
    single, cluster = RedisProcess(), RedisCluster3()
    single.start()
    cluster.start()
    rows: list[dict[str, Any]] = []
    try:
        base = Settings.from_env({}, click_shards=args.shards, log_level="warning")
        with tempfile.TemporaryDirectory() as tmp:
            rows += await measure("one redis", base.replace(redis_url=single.url), [single.port],
                                  args.events, args.shards, Path(tmp) / "a")
            rows += await measure("3-node cluster", base.replace(
                redis_url="redis://127.0.0.1:1/0", redis_cluster_nodes=tuple(cluster.seeds.split(","))),
                [node.port for node in cluster.nodes], args.events, args.shards, Path(tmp) / "b")
    finally:
        single.cleanup()
        cluster.cleanup()
    print(f"{args.events} events, {args.shards} shards")
    print("| Topology | Phase | events/s (wall) | process CPU µs/event | Redis CPU µs/event |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['topology']} | {r['phase']} | {r['events_per_s']:,.0f} | {r['process_us']:.1f} | "
              f"{r['redis_us']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
