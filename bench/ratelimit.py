"""Cost of the management API's rate limits: server and Redis CPU per `/api/v1` call, limits on vs off.

Self-contained: a fresh PostgreSQL database (SHOPLINK_TEST_DATABASE_URL's server), a private
redis-server, and `shoplink serve` subprocesses (one with SHOPLINK_RATE_LIMITS=true and limits
too high to ever refuse, one with false), each pinned to core 0 when taskset exists; the load
generator runs on the other core. Each round sends the same bounded number of authenticated
`GET /api/v1/me` calls; CPU comes from /proc/<pid>/stat (server) and INFO cpu (Redis), so the
figures hold on a machine shared with other work, unlike wall-clock throughput.

    .venv/bin/python bench/ratelimit.py                 # 3 rounds of 4,000 calls per setting
    .venv/bin/python bench/ratelimit.py --calls 1000 --rounds 1
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from benchlib import wait_http  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


async def redis_cpu_s(client: Any) -> float:
    info = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def start_server(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "shoplink", "serve"]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", "0", *cmd]
    return subprocess.Popen(cmd, env={**env, "SHOPLINK_PORT": str(port)}, stdout=subprocess.DEVNULL)


async def load(url: str, token: str, calls: int, concurrency: int) -> tuple[int, float]:
    """(calls answered 200, wall seconds)."""
    import aiohttp

    ok = 0
    per_worker = calls // concurrency
    headers = {"Authorization": f"Bearer {token}"}

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal ok
        for _ in range(per_worker):
            async with session.get(url, headers=headers) as r:
                await r.read()
                ok += r.status == 200

    start = time.monotonic()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    return ok, time.monotonic() - start


async def orchestrate(args: argparse.Namespace) -> None:
    from redis.asyncio import Redis

    from shoplink import db
    from shoplink.auth.service import AuthService

    from support.services import RedisProcess, admin_database_url, create_database, drop_database, free_port

    if shutil.which("taskset"):
        os.sched_setaffinity(0, {1})  # the load generator stays off the servers' core
    redis = RedisProcess()
    redis.start()
    admin = admin_database_url()
    url = await create_database(admin)
    servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    client = Redis.from_url(redis.url)
    try:
        con = await db.connect(url)
        await db.migrate(con)
        await con.close()
        pool = await db.create_pool(url, min_size=1, max_size=2)
        _, token = await AuthService(pool).create_account("bench", ["seller"])
        await pool.close()
        env = {**os.environ, "SHOPLINK_DATABASE_URL": url, "SHOPLINK_REDIS_URL": redis.url,
               "SHOPLINK_ACCESS_LOG": "false", "SHOPLINK_LOG_LEVEL": "warning",
               "SHOPLINK_SECRET_KEY": "bench-secret-key-0123456789", "SHOPLINK_ATTRIBUTION_CONSUMER": "false",
               "SHOPLINK_RATE_API_TOKEN_PER_S": "1000000", "SHOPLINK_RATE_API_TOKEN_BURST": "1000000",
               "SHOPLINK_RATE_API_CLIENT_PER_S": "1000000", "SHOPLINK_RATE_API_CLIENT_BURST": "1000000"}
        for name, on in (("limits on", "true"), ("limits off", "false")):
            port = free_port()
            servers[name] = (start_server(port, {**env, "SHOPLINK_RATE_LIMITS": on}), port)
            await wait_http(f"http://127.0.0.1:{port}/healthz")
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in servers}
        for _ in range(args.rounds):
            for name, (proc, port) in servers.items():
                target = f"http://127.0.0.1:{port}/api/v1/me"
                await load(target, token.token, 200, args.concurrency)  # warm up
                server0, redis0 = cpu_s(proc.pid), await redis_cpu_s(client)
                ok, wall = await load(target, token.token, args.calls, args.concurrency)
                server1, redis1 = cpu_s(proc.pid), await redis_cpu_s(client)
                calls = args.calls // args.concurrency * args.concurrency
                if ok != calls:
                    raise SystemExit(f"{name}: {calls - ok} calls were not answered 200")
                results[name].append(((server1 - server0) / calls * 1e6, (redis1 - redis0) / calls * 1e6,
                                      calls / wall))
        print(f"{args.calls} calls x {args.rounds} rounds, concurrency {args.concurrency}; "
              f"load: {Path('/proc/loadavg').read_text().split()[:3]}")
        print("| setting | server CPU µs/call (median) | Redis CPU µs/call (median) | calls/s (median) |")
        print("|---|---|---|---|")
        for name, rows in results.items():
            med = [sorted(col)[len(col) // 2] for col in zip(*rows, strict=True)]
            print(f"| {name} | {med[0]:.0f} | {med[1]:.1f} | {med[2]:.0f} |")
    finally:
        await client.aclose()
        for proc, _ in servers.values():
            proc.terminate()
        for proc, _ in servers.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        await drop_database(admin, url)
        redis.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    asyncio.run(orchestrate(parser.parse_args()))


if __name__ == "__main__":
    main()
