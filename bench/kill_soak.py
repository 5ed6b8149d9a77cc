"""Kill soak: `shoplink serve --workers 2` and one `shoplink count` under a steady click load,
with a server process killed with SIGKILL every few seconds; no answered click may be lost and
none counted twice.

    .venv/bin/python bench/kill_soak.py [--duration 30] [--rate 1000] [--connections 32]
                                        [--workers 2] [--kill-every 5] [--report FILE]

The stack, the seed and the open-loop load are bench/soak.py's (see there). Every KILL_EVERY
seconds one worker (in turn) is sent SIGKILL: no shutdown, no flush; `serve --workers` starts a
new one, and the spool file of the dead one (its journal: every event it answered is in it) is
claimed by a live process and shipped from its mark, uncertain batches looked up first.

Checks at the end, after the spools drained and the count worker caught up:
  every answered click id (302 seen by the load generator) is an event in the streams,
  no event id is in the streams twice,
  events beyond the answered ones <= requests cut by the kills (their event can be on file
  before the process died, without the answer having left),
  events in the streams == events the count worker applied == the stats API's total.
Exit status 1 when a check fails. Run `uptime` next to it: the machine may be shared.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp
from redis.asyncio import Redis
from soak import (
    METRICS_AUTH,
    METRICS_TOKEN,
    SECRET,
    SHARDS,
    RedisServer,
    applied,
    children,
    clock,
    pct,
    publish,
    run_load,
    seed,
    spool_bytes,
    stats_total,
    stop,
    stream_ids,
)

from support.services import admin_database_url, create_database, drop_database, free_port


async def wait_workers(base_url: str, count: int, serve: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as probe:
        deadline = time.monotonic() + 60
        pids: set[str] = set()
        while len(pids) < count:
            if time.monotonic() > deadline or serve.returncode is not None:
                raise RuntimeError(f"the {count} workers did not start")
            try:
                async with probe.get(base_url + "/metrics", headers=METRICS_AUTH) as resp:
                    found = re.search(r'shoplink_worker_info\{pid="(\d+)"', await resp.text())
                    pids |= {found[1]} if found else set()
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)


async def kill_soak(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="shoplink-kill-soak-"))
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
               "SHOPLINK_METRICS_TOKEN": METRICS_TOKEN, "SHOPLINK_ACCESS_LOG": "false",
               "SHOPLINK_LOG_LEVEL": "warning", "SHOPLINK_CLICK_SHARDS": str(SHARDS)}
        serve = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "shoplink", "serve", "--workers", str(args.workers),
            env=env, stdout=logs[0], stderr=logs[0])
        count = await asyncio.create_subprocess_exec(sys.executable, "-m", "shoplink", "count", env=env,
                                                     stdout=logs[1], stderr=logs[1])
        await wait_workers(base_url, args.workers, serve)
        redis = Redis.from_url(redis_server.url)
        t0 = clock() + 0.2
        kills: list[tuple[float, int]] = []

        async def killer() -> None:
            assert serve is not None
            n = 0
            while True:
                n += 1
                due = t0 + n * args.kill_every
                if due > t0 + args.duration - 1:
                    return
                await asyncio.sleep(max(0.0, due - clock()))
                workers = sorted(children(serve.pid))
                if workers:
                    victim = workers[n % len(workers)]
                    os.kill(victim, signal.SIGKILL)
                    kills.append((clock() - t0, victim))

        killing = asyncio.create_task(killer())
        load = await run_load(base_url, codes, rate=args.rate, duration=args.duration,
                              connections=args.connections, t0=t0)
        await killing

        deadline = time.monotonic() + 120
        answered = set(load.click_ids)
        while True:
            ids = await stream_ids(redis)
            counted = await applied(redis)
            if (spool_bytes(spool) == 0 and set(ids) >= answered and counted >= len(set(ids))) \
                    or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # anything late would show now
        ids = await stream_ids(redis)
        counted = await applied(redis)
        stats, _ = await stats_total(base_url, token, shop)
        await redis.aclose()
        distinct = Counter(ids)
        cut = sum(load.errors.values())
        extra = len(distinct) - len(answered & set(distinct))
        checks = {
            "every answered click is in the streams": answered <= set(distinct),
            "no event twice in the streams": not [i for i, n in distinct.items() if n > 1],
            "events beyond the answered ones <= requests cut by the kills": extra <= cut,
            "events == counted by the count worker": counted == len(distinct),
            "counted == the stats API's total": stats == counted,
        }
        ms = 1000.0
        lines = [
            f"## Kill soak: {args.workers} server processes + 1 count worker, {args.rate:g} clicks/s offered "
            f"for {args.duration:g} s, a worker killed (SIGKILL) every {args.kill_every:g} s",
            "",
            f"- machine: {os.cpu_count()} CPUs, load average before/after: {args.load_before} / "
            f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}",
            f"- kills at: {', '.join(f'{t:.1f} s' for t, _ in kills)}",
            f"- offered {load.sent}; answered {len(load.click_ids)}; cut by the kills {cut} "
            f"({dict(load.errors) or 0}); statuses {dict(load.statuses)}",
            f"- streams: {len(ids)} entries, {len(distinct)} distinct event ids; answered and in the "
            f"streams {len(answered & set(distinct))}; events of cut requests {extra}; counted {counted}; "
            f"stats API {stats}",
            f"- latency from the scheduled start: p50 {pct(load.from_schedule, .5) * ms:.1f} ms, "
            f"p99 {pct(load.from_schedule, .99) * ms:.1f} ms",
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
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load (default 30)")
    parser.add_argument("--rate", type=float, default=1000.0, help="clicks per second offered (default 1000)")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive connections (default 32)")
    parser.add_argument("--workers", type=int, default=2, help="server processes (default 2)")
    parser.add_argument("--kill-every", type=float, default=5.0, help="seconds between kills (default 5)")
    parser.add_argument("--report", help="also write the report (Markdown) to this file")
    parser.add_argument("--keep", action="store_true", help="keep the logs and data directory")
    args = parser.parse_args()
    if args.duration < 10 or args.rate <= 0 or args.workers < 1 or args.kill_every <= 0:
        parser.error("--duration must be at least 10 s; --rate, --workers, --kill-every positive")
    args.load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    try:
        import uvloop

        return uvloop.run(kill_soak(args))
    except ImportError:  # pragma: no cover
        return asyncio.run(kill_soak(args))


if __name__ == "__main__":
    sys.exit(main())
