"""Benchmark: POST /v1/events (the player's beacons, 20 events per request) against a bare
aiohttp handler that reads the same body and answers 204.

    .venv/bin/python bench/events.py [--duration 3] [--rounds 3] [--connections 50] [--profile x.txt] [--floors]

Starts its own redis-server, a fresh PostgreSQL database (a shop, a video and 30 anchors) and
`shoplink serve` (uvloop, access log off, the per-client event limit raised so that the load
generator is one client) pinned with `taskset -c 1`, and the bare handler with the same pinning.
wrk (pinned to core 0) posts, per request, a new page view with 18 card impressions, one view
and one quartile (about 1.3 KB; every event is checked, resolved and streamed). The two servers
are loaded alternately, `--rounds` times. Target: >= 0.7x the bare handler's requests/s.
`--floors` adds two servers measured in the same rounds: shoplink's server path answering the
preformatted 204 right after reading the body, and the same with the beacon's decoding and schema
check: what any handler on this stack pays before its own work.
Everything is cleaned up at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.services import (  # noqa: E402
    RedisProcess,
    admin_database_url,
    create_database,
    drop_database,
    free_port,
)

PY = sys.executable
WRK = shutil.which("wrk") or "/usr/bin/wrk"
SERVER_CORE = "1"
WRK_CORE = "0"

LUA = """
math.randomseed(os.time())
local codes = {%(codes)s}
local n = 0
request = function()
  n = n + 1
  local pv = string.format("%%08x%%08x%%06x", math.random(0, 0x7fffffff), math.random(0, 0x7fffffff), n %% 0xffffff)
  local ev = {}
  for i = 1, 18 do
    ev[#ev + 1] = '{"type":"impression","code":"' .. codes[(i + n) %% #codes + 1] .. '","t":' .. i .. '.5}'
  end
  ev[#ev + 1] = '{"type":"view","video":%(video)d,"t":0}'
  ev[#ev + 1] = '{"type":"progress","video":%(video)d,"q":25,"t":15.2}'
  local body = '{"pv":"' .. pv .. '","events":[' .. table.concat(ev, ",") .. ']}'
  return wrk.format("POST", "/v1/events", {["Content-Type"] = "text/plain;charset=UTF-8",
    ["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) Chrome/120"}, body)
end
"""


def bare_server(port: int) -> None:
    """A bare aiohttp app (uvloop): read the body, answer 204."""
    import uvloop
    from aiohttp import web

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/v1/events", handler)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, loop=uvloop.new_event_loop())


def floor_server(port: int, decode: bool) -> None:
    """What any beacon handler on shoplink's server path pays before doing its work: the
    server-level fast path (shoplink.fastpath.install, read timeouts), the body read as
    POST /v1/events reads it, and the preformatted 204; with `decode`, the beacon's decoding and
    schema check too (funnel/validate.py). Nothing resolved, journaled or streamed."""
    import uvloop
    from aiohttp import web

    from shoplink import aiohttp_internals
    from shoplink.fastpath import install, public_cors
    from shoplink.funnel.validate import events_of
    from shoplink.funnel.views import _body, no_content_message
    from shoplink.security.cors import CROSS_ORIGIN_HEADERS

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        body = await _body(request)
        if decode:
            events_of(body)
        return aiohttp_internals.PreformattedResponse(204, no_content_message(int(time.time())),
                                                      CROSS_ORIGIN_HEADERS)

    async def run() -> None:
        runner = web.AppRunner(web.Application(), access_log=None)
        await runner.setup()
        assert runner.server is not None
        install(runner.server, {}, exact={("POST", "/v1/events"): public_cors(handler)})
        aiohttp_internals.install_read_timeouts(runner.server, aiohttp_internals.ReadTimeouts(
            header_s=10, body_s=30, body_min_rate=1024, body_error=lambda: TimeoutError()))
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await asyncio.Event().wait()

    uvloop.run(run())


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except Exception:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, script: Path, seconds: int, connections: int, pid: int) -> tuple[float, float]:
    """(req/s by the wall clock, req per server CPU second) of one wrk run."""
    cpu = cpu_seconds(pid)
    out = subprocess.run(["taskset", "-c", WRK_CORE, WRK, "-t1", f"-c{connections}", f"-d{seconds}s",
                          "-s", str(script), url], capture_output=True, text=True, check=True).stdout
    used = cpu_seconds(pid) - cpu
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if not rate or not total or "Non-2xx" in out:
        raise RuntimeError(f"wrk failed:\n{out}")
    return float(rate[1]), int(total[1]) / max(used, 1e-3)


def _profile(path: Path, pid: int, duration: int) -> subprocess.Popen[bytes]:
    fmt = {".json": "speedscope", ".txt": "raw"}.get(path.suffix, "flamegraph")
    return subprocess.Popen([str(Path(PY).parent / "py-spy"), "record", "-o", str(path), "--pid", str(pid),
                             "--duration", str(duration), "--rate", "250", "-f", fmt],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def prepare(database_url: str) -> tuple[int, list[str]]:
    """Migrate, then a seller, a creator, a video with 30 anchors: (video id, anchor codes)."""
    from shoplink import db
    from shoplink.auth.service import AuthService

    from support.analytics_data import seed

    con = await db.connect(database_url)
    try:
        await db.migrate(con)
    finally:
        await con.close()
    pool = await db.create_pool(database_url, min_size=1, max_size=2)
    try:
        seller, _ = await AuthService(pool).create_account("bench-seller", ["seller"])
        creator, _ = await AuthService(pool).create_account("bench-creator", ["creator"])
        s = await seed(pool, seller.id, creator.id, products=30, tag="b")
        async with pool.acquire() as con:
            codes = [r["code"] for r in await con.fetch(
                "SELECT code FROM anchors WHERE video_id = $1 ORDER BY id", s.video_id)]
        return s.video_id, codes
    finally:
        await pool.close()


def _floor_line(measured: list[tuple[float, float]], rounds: list[tuple[tuple[float, float], tuple[float, float]]],
                bare_cpu: float) -> str:
    cpu = statistics.median(f[1] for f in measured)
    wall = statistics.median(f[0] / b[0] for f, (_, b) in zip(measured, rounds, strict=True))
    return f"{cpu:,.0f} / {bare_cpu:,.0f} = {cpu / bare_cpu:.2f}x (wall, median of rounds: {wall:.2f}x)"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3, help="alternating wrk runs per server")
    parser.add_argument("--profile", type=Path,
                        help="py-spy record the server during its first round (.txt: raw, for bench/profile_top.py)")
    parser.add_argument("--floors", action="store_true",
                        help="also measure the floor of shoplink's server path (body read + 204), "
                             "with and without the beacon's decoding, against the same bare handler")
    parser.add_argument("--bare-server", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--floor-server", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--decode", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server:
        bare_server(args.bare_server)
        return 0
    if args.floor_server:
        floor_server(args.floor_server, args.decode)
        return 0
    work = Path(tempfile.mkdtemp(prefix="shoplink-bench-events-"))
    procs: list[subprocess.Popen[bytes]] = []
    redis = RedisProcess()
    admin = admin_database_url()
    database_url = None
    results: list[tuple[str, str]] = []
    try:
        redis.start()
        database_url = asyncio.run(create_database(admin))
        video_id, codes = asyncio.run(prepare(database_url))
        script = work / "events.lua"
        script.write_text(LUA % {"codes": ", ".join(f'"{c}"' for c in codes), "video": video_id})
        port, bare_port = free_port(), free_port()
        env = {**os.environ, "SHOPLINK_DATABASE_URL": database_url, "SHOPLINK_REDIS_URL": redis.url,
               "SHOPLINK_PORT": str(port), "SHOPLINK_ACCESS_LOG": "false", "SHOPLINK_RATE_LIMITS": "false",
               "SHOPLINK_LOG_LEVEL": "warning", "SHOPLINK_SPOOL_DIR": str(work / "spool"),
               "SHOPLINK_MEDIA_DIR": str(work / "media"), "SHOPLINK_EVENTS_CLIENT_PER_S": "1e9",
               "SHOPLINK_EVENTS_CLIENT_BURST": "1000000000",
               "SHOPLINK_SECRET_KEY": "bench-secret-key-0123456789"}
        procs.append(subprocess.Popen(["taskset", "-c", SERVER_CORE, PY, "-m", "shoplink", "serve"],
                                      env=env, cwd=ROOT))
        procs.append(subprocess.Popen(["taskset", "-c", SERVER_CORE, PY, __file__, "--bare-server",
                                       str(bare_port)]))
        floors: list[tuple[str, int, int]] = []  # (label, port, pid)
        if args.floors:
            for label, extra in (("floor (server path, body read, 204)", []),
                                 ("floor + the beacon's decoding and check", ["--decode"])):
                floor_port = free_port()
                procs.append(subprocess.Popen(["taskset", "-c", SERVER_CORE, PY, __file__, "--floor-server",
                                               str(floor_port), *extra]))
                floors.append((label, floor_port, procs[-1].pid))
        base, bare = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{bare_port}"
        wait_http(f"{base}/healthz")
        time.sleep(0.5)  # the bare server has no GET route: give it a moment to listen
        ours_pid, bare_pid = procs[0].pid, procs[1].pid
        url, bare_url = f"{base}/v1/events", f"{bare}/v1/events"
        wrk(url, script, 1, args.connections, ours_pid)  # warm-up (resolver cache, connections)
        wrk(bare_url, script, 1, args.connections, bare_pid)
        for _, floor_port, floor_pid in floors:
            wrk(f"http://127.0.0.1:{floor_port}/v1/events", script, 1, args.connections, floor_pid)
        rounds = []
        floor_rounds: list[list[tuple[float, float]]] = [[] for _ in floors]
        for _ in range(args.rounds):
            for (_, floor_port, floor_pid), measured in zip(floors, floor_rounds, strict=True):
                measured.append(wrk(f"http://127.0.0.1:{floor_port}/v1/events", script, args.duration,
                                    args.connections, floor_pid))
            profiler = _profile(args.profile, ours_pid, args.duration) if args.profile else None
            ours = wrk(url, script, args.duration, args.connections, ours_pid)
            if profiler is not None:
                profiler.wait()
                args.profile = None  # the first round only
            rounds.append((ours, wrk(bare_url, script, args.duration, args.connections, bare_pid)))
        ratios = sorted(o[0] / b[0] for o, b in rounds)
        ours_cpu = statistics.median(o[1] for o, _ in rounds)
        bare_cpu = statistics.median(b[1] for _, b in rounds)
        streamed = int(subprocess.run(["redis-cli", "-u", redis.url, "--no-raw", "EVAL",
                                       "local n = 0 for i = 0, 3 do n = n + redis.call('XLEN', "
                                       "'shoplink:events:{' .. i .. '}') end return n", "0"],
                                      capture_output=True, text=True).stdout.split()[-1] or 0)
        results += [("rounds (ours / bare req/s)", ", ".join(f"{o[0]:,.0f} / {b[0]:,.0f}" for o, b in rounds)),
                    ("events/s (median, 20 per request)",
                     f"{statistics.median(o[0] for o, _ in rounds) * 20:,.0f} / "
                     f"{statistics.median(b[0] for _, b in rounds) * 20:,.0f}"),
                    ("ratio (median of rounds)", f"{statistics.median(ratios):.2f}x (target >= 0.70x)"),
                    ("ratio (best round)", f"{ratios[-1]:.2f}x"),
                    ("per server CPU-second (ours / bare)",
                     f"{ours_cpu:,.0f} / {bare_cpu:,.0f} = {ours_cpu / bare_cpu:.2f}x"),
                    *[(f"{label} / bare, per server CPU-second", _floor_line(measured, rounds, bare_cpu))
                      for (label, _, _), measured in zip(floors, floor_rounds, strict=True)],
                    ("stream entries written (batches, one per shard touched per request)", f"{streamed:,}"),
                    ("load", f"wrk -t1 -c{args.connections} -d{args.duration}s x {args.rounds} rounds each, "
                             f"server on core {SERVER_CORE}, wrk on core {WRK_CORE}, uvloop, access log off")]
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        redis.cleanup()
        if database_url:
            asyncio.run(drop_database(admin, database_url))
        shutil.rmtree(work, ignore_errors=True)
    width = max(len(k) for k, _ in results)
    for key, value in results:
        print(f"{key:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
