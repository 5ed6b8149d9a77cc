"""Instructions per request: /r/{code} (the real server) vs the bare aiohttp 302, under callgrind.

Wall clock and CPU time on the shared 2-core VM move with the other work on it; the number of
instructions a server executes per request does not. This runs one server under
`valgrind --tool=callgrind` (Python is ~50x slower there, so the load is a fixed number of
requests from a small keep-alive client), warms it up, zeroes the counters
(`callgrind_control --zero`), sends the measured requests, dumps (`callgrind_control --dump`)
and prints instructions (Ir) per request. Only user-space instructions are counted (system
calls: see the user/sys split of bench/clicks.py). `--cprofile FILE` runs the server with
cProfile over the same measured requests instead and prints calls per request.

    .venv/bin/python bench/clicks_instr.py baseline --requests 3000 --warmup 1000
    .venv/bin/python bench/clicks_instr.py shoplink --requests 3000 --warmup 1000 --flush-ms 500
    .venv/bin/python bench/clicks_instr.py shoplink --requests 3000 --warmup 1000 --flush-ms 200 \
        --attribution --attribution-pause 4

Time-driven work is spread over fewer requests under valgrind than at full speed (the server
answers a few hundred requests per second): the writer flushes every SHOPLINK_CLICK_FLUSH_MS,
and the attribution consumer reads after a 0.1 s pause. `--flush-ms` scales the flush interval
so that a batch carries about as many events as in the wrk benchmark; `--attribution` runs the
consumer inside the server (SHOPLINK_ATTRIBUTION_CONSUMER=true; off by default: it runs in
`shoplink count`); `--attribution-pause` lengthens the consumer's
pause after a partial batch for the same reason. The resolver TTL is set to an hour, so no
re-read falls into the measured requests (the wrk benchmark's 60 s TTL re-reads each anchor
about every 40 s). The callgrind output file is kept with `--out` for `callgrind_annotate`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from clicks import seed  # noqa: E402

from support.services import RedisProcess, admin_database_url, create_database, drop_database, free_port  # noqa: E402

PYTHON = sys.executable
# Every server runs inside this wrapper. `--cprofile`: cProfile switched on by SIGUSR1 and dumped
# by SIGUSR2 (call counts per request are exact; the times are cProfile's, inflated by its own
# overhead). `--attribution-pause`: the attribution consumer's pause after a partial batch
# (default 0.1 s), so that under callgrind a read carries as many events as at full speed.
_WRAPPER = """
import asyncio, cProfile, os, runpy, signal, sys
from aiohttp import web
out = os.environ.get("BENCH_CPROFILE_OUT")
pause = os.environ.get("BENCH_ATTRIBUTION_PAUSE_S")
prof = cProfile.Profile()
async def _started(app):
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, prof.enable)
    loop.add_signal_handler(signal.SIGUSR2, lambda: (prof.disable(), prof.dump_stats(out)))
run_app = web.run_app
def _run_app(app, *args, **kwargs):
    if out:
        app.on_startup.append(_started)
    return run_app(app, *args, **kwargs)
web.run_app = _run_app
if pause:
    from shoplink.affiliates.attribution import AttributionConsumer
    init = AttributionConsumer.__init__
    AttributionConsumer.__init__ = lambda self, *a, **k: init(self, *a, **{"pause_s": float(pause), **k})
if sys.argv[1] == "-m":
    sys.argv = sys.argv[2:]
    runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
else:
    sys.argv = sys.argv[1:]
    runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _print_cprofile(path: Path, requests: int) -> None:
    import pstats

    stats = pstats.Stats(str(path))
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])  # type: ignore[attr-defined]
    print(f"{'calls/req':>9} {'tottime us/req':>14} {'cumtime us/req':>14}  function")
    for (file, line, name), (_cc, ncalls, tottime, cumtime, _callers) in rows[:60]:
        print(f"{ncalls / requests:9.2f} {tottime / requests * 1e6:14.2f} {cumtime / requests * 1e6:14.2f}  "
              f"{name} ({Path(file).name}:{line})")


async def _one_connection(port: int, paths: list[str], counter: list[int], total: int,
                          cookie: bytes, sequential: bool) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while counter[0] < total:
            path = paths[counter[0] % len(paths)] if sequential else random.choice(paths)
            counter[0] += 1
            writer.write(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n" + cookie + b"\r\n")
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 302"):
                raise RuntimeError(f"unexpected answer {head[:40]!r}")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
    finally:
        writer.close()


async def load(port: int, paths: list[str], total: int, connections: int, *, returning: bool,
               sequential: bool = False) -> float:
    """`total` GETs over `connections` keep-alive connections (random paths, or each path in
    turn); returns the seconds taken."""
    cookie = b"Cookie: sl_vid=" + secrets.token_hex(16).encode() + b"\r\n" if returning else b""
    counter = [0]
    start = time.monotonic()
    await asyncio.gather(*(_one_connection(port, paths, counter, total, cookie, sequential)
                           for _ in range(connections)))
    return time.monotonic() - start


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 600) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"port {port} did not open")


def _total_ir(path: Path) -> int:
    for line in path.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def run(args: argparse.Namespace) -> None:
    redis_proc = RedisProcess()
    redis_proc.start()
    admin = admin_database_url()
    url = asyncio.run(create_database(admin))
    tmp = Path(tempfile.mkdtemp(prefix="shoplink-instr-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        codes = asyncio.run(seed(url))
        paths = [f"/r/{c}" for c in codes[:args.anchors or None]]
        port = free_port()
        out = args.out or tmp / "callgrind.out"
        if args.cprofile:
            tool = []
        else:
            tool = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-line=no"]
        if args.server == "baseline":
            cmd = [*tool, PYTHON, str(ROOT / "bench" / "clicks_baseline.py"), str(port)]
            env = dict(os.environ)
        else:
            cmd = [*tool, PYTHON, "-m", "shoplink", "serve"]
            env = {**os.environ, "SHOPLINK_DATABASE_URL": url, "SHOPLINK_REDIS_URL": redis_proc.url,
                   "SHOPLINK_PORT": str(port), "SHOPLINK_SPOOL_DIR": str(tmp / "spool"),
                   "SHOPLINK_SECRET_KEY": secrets.token_hex(16), "SHOPLINK_ACCESS_LOG": "false",
                   "SHOPLINK_LOG_LEVEL": "warning", "SHOPLINK_CLICK_SHARDS": "4",
                   "SHOPLINK_CLICK_FLUSH_MS": str(args.flush_ms),
                   "SHOPLINK_CLICK_CACHE_TTL_S": "3600",
                   "SHOPLINK_ATTRIBUTION_CONSUMER": "true" if args.attribution else "false"}
        cmd = [*tool, PYTHON, "-c", _WRAPPER, *cmd[len(tool) + 1:]]
        env["BENCH_CPROFILE_OUT"] = str(args.cprofile or "")
        env["BENCH_ATTRIBUTION_PAUSE_S"] = str(args.attribution_pause or "")
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                stderr=None if args.verbose else subprocess.DEVNULL)
        _wait_port(port, proc)
        # Warm-up: every code once (the resolver cache filled), then random codes.
        asyncio.run(load(port, paths, len(paths), args.connections, returning=False, sequential=True))
        asyncio.run(load(port, paths, args.warmup, args.connections, returning=args.returning))
        if args.cprofile:
            proc.send_signal(signal.SIGUSR1)
            time.sleep(0.5)
        else:
            subprocess.run(["callgrind_control", "--zero", str(proc.pid)], check=True, capture_output=True)
        seconds = asyncio.run(load(port, paths, args.requests, args.connections, returning=args.returning))
        if args.cprofile:
            proc.send_signal(signal.SIGUSR2)
            time.sleep(1)
        else:
            subprocess.run(["callgrind_control", "--dump", str(proc.pid)], check=True, capture_output=True)
        proc.terminate()
        proc.wait(timeout=120)
        if args.cprofile:
            _print_cprofile(args.cprofile, args.requests)
            return
        part = Path(f"{out}.1")  # the dump made right after the measured requests
        ir = _total_ir(part)
        print(f"{args.server}: {ir / args.requests:,.0f} instructions/request "
              f"({ir:,} Ir over {args.requests} requests, {args.requests / seconds:.0f} req/s under "
              f"callgrind, {args.connections} connections{', returning viewers' if args.returning else ''}"
              f"{'' if args.server == 'baseline' else f', flush {args.flush_ms} ms'}"
              f"{', attribution in the server' if args.attribution and args.server != 'baseline' else ''}"
              f"{f', attribution pause {args.attribution_pause} s' if args.attribution_pause else ''}); "
              f"profile: {part}")
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        redis_proc.cleanup()
        asyncio.run(drop_database(admin, url))
        if args.out is None and not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("server", choices=("shoplink", "baseline"))
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--flush-ms", type=int, default=5)
    parser.add_argument("--attribution", action="store_true",
                        help="run the attribution consumer inside the server (off by default)")
    parser.add_argument("--returning", action="store_true", help="send a viewer cookie (no Set-Cookie)")
    parser.add_argument("--cprofile", type=Path, help="cProfile the measured requests instead (call counts)")
    parser.add_argument("--attribution-pause", type=float,
                        help="seconds the attribution consumer pauses after a partial batch (0.1)")
    parser.add_argument("--anchors", type=int, default=0, help="draw codes from the first N anchors only")
    parser.add_argument("--out", type=Path, help="keep the callgrind output here")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--verbose", action="store_true")
    main_args = parser.parse_args()
    run(main_args)


if __name__ == "__main__":
    main()
