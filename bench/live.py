"""Live fan-out benchmark: 10,000 concurrent SSE viewers of one live session.

Self-contained: a fresh PostgreSQL database, a private redis-server, `shoplink serve` as
subprocess(es) pinned with taskset, and viewer processes holding raw asyncio connections.
The host pins/unpins products; every viewer records when each event arrives; latency is the
receive time (CLOCK_MONOTONIC, shared by all processes) minus the time the host sent the
request. Also reports server RSS per connected viewer.

    .venv/bin/python bench/live.py                 # 10,000 viewers, 1 then 2 server processes
    .venv/bin/python bench/live.py --viewers 2000  # quicker
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from benchlib import wait_http  # noqa: E402

EVENT_RE = re.compile(rb"id: (\d+)\nevent: (\w+)\n")


# ---- viewer process ------------------------------------------------------------------------

class Viewer(asyncio.Protocol):
    def __init__(self, request: bytes, ready: asyncio.Event, counter: list[int], total: int) -> None:
        self.request = request
        self.tail = b""
        self.seen: dict[int, float] = {}
        self.got_state = False
        self.ready = ready
        self.counter = counter
        self.total = total
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        buf = self.tail + data
        for match in EVENT_RE.finditer(buf):
            event_id, name = int(match[1]), match[2]
            if name == b"state":
                if not self.got_state:
                    self.got_state = True
                    self.counter[0] += 1
                    if self.counter[0] == self.total:
                        self.ready.set()
            elif event_id not in self.seen:
                self.seen[event_id] = now
        self.tail = buf[-48:]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


async def viewer_main(port: int, live_id: int, n: int) -> None:
    loop = asyncio.get_running_loop()
    request = (f"GET /v1/live/{live_id}/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
               "Accept: text/event-stream\r\n\r\n").encode()
    ready = asyncio.Event()
    counter = [0]
    viewers: list[Viewer] = []
    transports: list[asyncio.BaseTransport] = []
    sem = asyncio.Semaphore(200)

    async def connect() -> None:
        async with sem:
            for attempt in range(20):
                try:
                    transport, proto = await loop.create_connection(
                        lambda: Viewer(request, ready, counter, n), "127.0.0.1", port)
                    viewers.append(proto)
                    transports.append(transport)
                    return
                except OSError:
                    await asyncio.sleep(0.05 * (attempt + 1))
            raise RuntimeError("could not connect")

    started = time.monotonic()
    await asyncio.gather(*(connect() for _ in range(n)))
    await asyncio.wait_for(ready.wait(), 120)
    print(orjson.dumps({"ready": n, "connect_s": time.monotonic() - started}).decode(), flush=True)
    await loop.run_in_executor(None, sys.stdin.readline)  # the parent says when to stop
    received: dict[int, list[float]] = {}
    for v in viewers:
        for event_id, t in v.seen.items():
            received.setdefault(event_id, []).append(t)
    alive = sum(1 for v in viewers if not v.closed.done())
    for t in transports:
        t.close()
    print(orjson.dumps({"received": received, "alive": alive}, option=orjson.OPT_NON_STR_KEYS).decode(),
          flush=True)


# ---- orchestration -----------------------------------------------------------------------------

def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def start_server(port: int, env: dict[str, str], core: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "shoplink", "serve"]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", core, *cmd]
    return subprocess.Popen(cmd, env={**env, "SHOPLINK_PORT": str(port)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def start_viewers(port: int, live_id: int, n: int, core: str) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, __file__, "--viewer-process", "--port", str(port), "--live", str(live_id),
           "--viewers", str(n)]
    if shutil.which("taskset"):
        cmd = ["taskset", "-c", core, *cmd]
    return subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE)


async def read_json_line(proc: subprocess.Popen[bytes], timeout: float) -> Any:
    assert proc.stdout is not None
    loop = asyncio.get_running_loop()
    line = await asyncio.wait_for(loop.run_in_executor(None, proc.stdout.readline), timeout)
    if not line:
        raise RuntimeError("viewer process exited early")
    return orjson.loads(line)


async def run_phase(name: str, ports: list[int], pids: list[int], host: Any, live_id: int,
                    product_ids: list[int], viewers: int, changes: int, spacing: float,
                    client_procs: int) -> dict[str, Any]:
    per_proc = viewers // client_procs
    targets = [ports[i % len(ports)] for i in range(client_procs)]
    rss_before = sum(rss_kb(pid) for pid in pids)
    procs = [start_viewers(port, live_id, per_proc, "1") for port in targets]
    started = time.monotonic()
    readies = [await read_json_line(p, 180) for p in procs]
    connect_s = time.monotonic() - started
    await asyncio.sleep(1.0)  # let the servers settle (viewer counts, GC)
    rss_after = sum(rss_kb(pid) for pid in pids)

    sent: dict[int, float] = {}
    request_ms: list[float] = []
    plan: list[tuple[str, int]] = []
    a, b = product_ids[0], product_ids[1]
    for i in range(changes):
        plan.append([("pin", a), ("pin", b), ("unpin", a), ("unpin", b)][i % 4])
    for action, pid in plan:
        t0 = time.monotonic()
        if action == "pin":
            reply = await host.post(f"/api/v1/live/{live_id}/pins", {"product_id": pid})
        else:
            reply = await host.delete(f"/api/v1/live/{live_id}/pins/{pid}")
        assert reply.status in (200, 201), reply.body
        sent[int(reply.body["seq"])] = t0
        request_ms.append((time.monotonic() - t0) * 1000)
        await asyncio.sleep(spacing)
    await asyncio.sleep(1.5)
    latencies: list[float] = []
    per_event: dict[int, list[float]] = {}
    delivered = 0
    alive = 0
    for p in procs:
        assert p.stdin is not None
        p.stdin.write(b"stop\n")
        p.stdin.flush()
    for p in procs:
        result = await read_json_line(p, 120)
        alive += result["alive"]
        for event_id, times in result["received"].items():
            t0 = sent.get(int(event_id))
            if t0 is None:
                continue
            delivered += len(times)
            latencies.extend(t - t0 for t in times)
            per_event.setdefault(int(event_id), []).extend(t - t0 for t in times)
        p.wait(timeout=30)
    expected = per_proc * client_procs * len(sent)
    return {"phase": name, "servers": len(ports), "viewers": per_proc * client_procs,
            "connect_s": connect_s, "changes": len(sent), "delivered": delivered, "expected": expected,
            "alive": alive, "p50_ms": pct(latencies, 0.50) * 1000, "p99_ms": pct(latencies, 0.99) * 1000,
            "max_ms": max(latencies) * 1000 if latencies else float("nan"),
            "req_p50_ms": pct(request_ms, 0.5), "req_max_ms": max(request_ms),
            "per_event_p99_ms": [round(pct(per_event[k], 0.99) * 1000) for k in sorted(per_event)],
            "rss_before_mb": rss_before / 1024, "rss_after_mb": rss_after / 1024,
            "kb_per_viewer": (rss_after - rss_before) / max(1, per_proc * client_procs),
            "ready": readies}


async def orchestrate(args: argparse.Namespace) -> None:
    import aiohttp

    from shoplink import db
    from shoplink.auth.service import AuthService

    from support.api import Api
    from support.services import RedisProcess, admin_database_url, create_database, drop_database, free_port

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, args.viewers + 4096))
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))  # inherited by every child
    if want < args.viewers + 1000:
        raise SystemExit(f"file-descriptor hard limit {hard} is too low for {args.viewers} viewers")

    redis = RedisProcess()
    redis.start()
    admin = admin_database_url()
    url = await create_database(admin)
    servers: list[subprocess.Popen[bytes]] = []
    results: list[dict[str, Any]] = []
    try:
        con = await db.connect(url)
        await db.migrate(con)
        await con.close()
        pool = await db.create_pool(url, min_size=1, max_size=2)
        _, token = await AuthService(pool).create_account("bench-host", ["seller"])
        await pool.close()
        env = {**os.environ, "SHOPLINK_DATABASE_URL": url, "SHOPLINK_REDIS_URL": redis.url,
               "SHOPLINK_ACCESS_LOG": "false", "SHOPLINK_LOG_LEVEL": "warning", "SHOPLINK_RATE_LIMITS": "false",
               "SHOPLINK_SECRET_KEY": "bench-secret-key-0123456789", "SHOPLINK_LIVE_HEARTBEAT_S": "15"}
        ports = [free_port(), free_port()]
        servers.append(start_server(ports[0], env, "0"))
        await wait_http(f"http://127.0.0.1:{ports[0]}/healthz")

        async with aiohttp.ClientSession() as http:
            host = Api(http, f"http://127.0.0.1:{ports[0]}", token.token)
            shop = await host.post("/api/v1/shops", {"name": "Bench", "domains": ["bench.example"]})
            # product images must come from a verified domain: approve it as an operator would
            approve = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "shoplink", "domains", "approve", "bench.example", "--shop",
                str(shop.body["id"]), "--reason", "benchmark", env=env, stdout=subprocess.DEVNULL)
            assert await approve.wait() == 0, "shoplink domains approve failed"
            ids = []
            for i in range(2):
                p = await host.post(f"/api/v1/shops/{shop.body['id']}/products", {
                    "title": f"Bench product {i}", "url": f"https://bench.example/p/{i}",
                    "price": "9.99", "currency": "EUR", "image_url": "https://bench.example/i.jpg"})
                ids.append(p.body["id"])

            async def new_live() -> int:
                live = await host.post("/api/v1/live", {"title": "Bench live", "product_ids": ids})
                await host.post(f"/api/v1/live/{live.body['id']}/start")
                return int(live.body["id"])

            live_id = await new_live()
            results.append(await run_phase("one server", ports[:1], [servers[0].pid], host, live_id, ids,
                                           args.viewers, args.changes, args.spacing, 2))
            # Two fresh server processes (RSS of the first one would include freed-but-kept memory).
            servers[0].terminate()
            servers[0].wait(timeout=15)
            ports = [free_port(), free_port()]
            servers = [start_server(port, env, "0") for port in ports]
            for port in ports:
                await wait_http(f"http://127.0.0.1:{port}/healthz")
            host = Api(http, f"http://127.0.0.1:{ports[0]}", token.token)
            await asyncio.sleep(1.0)
            live_id = await new_live()
            results.append(await run_phase("two servers", ports, [s.pid for s in servers], host, live_id,
                                           ids, args.viewers, args.changes, args.spacing, 2))
    finally:
        for s in servers:
            s.terminate()
        for s in servers:
            try:
                s.wait(timeout=15)
            except subprocess.TimeoutExpired:
                s.kill()
        await drop_database(admin, url)
        redis.cleanup()

    print()
    print(f"viewers={args.viewers} changes/phase={args.changes} spacing={args.spacing}s "
          f"(servers on CPU 0, viewer processes on CPU 1, {os.cpu_count()} CPUs)")
    head = ("phase", "servers", "viewers", "connect s", "delivered", "p50 ms", "p99 ms", "max ms",
            "pin request p50/max ms", "RSS before MB", "RSS after MB", "KB/viewer")
    print(" | ".join(head))
    for r in results:
        print(" | ".join([r["phase"], str(r["servers"]), str(r["viewers"]), f"{r['connect_s']:.1f}",
                          f"{r['delivered']}/{r['expected']}", f"{r['p50_ms']:.0f}",
                          f"{r['p99_ms']:.0f}", f"{r['max_ms']:.0f}",
                          f"{r['req_p50_ms']:.0f}/{r['req_max_ms']:.0f}", f"{r['rss_before_mb']:.0f}",
                          f"{r['rss_after_mb']:.0f}", f"{r['kb_per_viewer']:.1f}"]))
    for r in results:
        print(f"{r['phase']}: p99 per change (ms): {r['per_event_p99_ms']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--viewers", type=int, default=10_000)
    parser.add_argument("--changes", type=int, default=12)
    parser.add_argument("--spacing", type=float, default=0.75, help="seconds between pin changes")
    parser.add_argument("--viewer-process", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--live", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    try:
        import uvloop
        run = uvloop.run
    except ImportError:  # pragma: no cover
        run = asyncio.run
    if args.viewer_process:
        run(viewer_main(args.port, args.live, args.viewers))
    else:
        run(orchestrate(args))


if __name__ == "__main__":
    main()
