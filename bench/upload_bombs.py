"""Benchmark: the server's peak resident memory while it refuses the upload battery.

Self-contained: its own redis-server, a fresh PostgreSQL database (on the server in
SHOPLINK_TEST_DATABASE_URL), and `python -m shoplink serve` (one process, the default two media
threads). One ordinary upload first (OpenCV's libraries loaded: the process as it idles after
its first video), then the battery of tests/support/hostile_media.py (decode bombs of
16000x16000 and 8000x8000 MJPG frames, an AVI claiming 2^31-1 frames, one claiming 6 hours, a
header lying about the frame size, truncated AVI/MP4/WebM, non-videos named like videos), once
one at a time and then in rounds of all twelve at once. Each must be refused with its 422.

Memory is read from /proc/PID/status: VmRSS before, VmHWM (peak) after; the peak is reset
(`echo 5 > /proc/PID/clear_refs`) before each phase, so a phase's peak is its own. Also measured:
the largest frame the default limit accepts (five 4096x2160 MJPG frames, accepted), and with
`--unbounded`, the 16000x16000 bomb with SHOPLINK_MAX_VIDEO_PIXELS lifted to its maximum (what
a server without the limit pays; needs about 2 GB free for a moment).

    .venv/bin/python bench/upload_bombs.py [--rounds 3] [--unbounded]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from shoplink import db  # noqa: E402
from shoplink.auth.service import AuthService  # noqa: E402

from support.click_server import ServeProcess  # noqa: E402
from support.hostile_media import Hostile, battery, flat_jpeg, mjpg_avi  # noqa: E402
from support.services import RedisProcess, admin_database_url, create_database, drop_database  # noqa: E402
from support.video_data import make_video  # noqa: E402

SECRET = "bench-secret-key-0123456789abcdef"
MB = 1024 * 1024


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS


async def seed(url: str) -> str:
    con = await db.connect(url)
    try:
        await db.migrate(con)
    finally:
        await con.close()
    pool = await db.create_pool(url, min_size=1, max_size=2)
    try:
        _, token = await AuthService(pool).create_account("bench creator", ["creator"])
        return token.token
    finally:
        await pool.close()


async def upload(http: aiohttp.ClientSession, base: str, token: str, name: str,
                 data: bytes) -> tuple[int, dict[str, Any]]:
    form = aiohttp.FormData()
    form.add_field("file", io.BytesIO(data), filename=name, content_type="application/octet-stream")
    async with http.post(f"{base}/api/v1/videos", data=form,
                         headers={"Authorization": f"Bearer {token}"}) as resp:
        return resp.status, await resp.json()


async def refuse_all(http: aiohttp.ClientSession, base: str, token: str, cases: list[Hostile]) -> None:
    replies = await asyncio.gather(*(upload(http, base, token, c.name, c.data) for c in cases))
    for case, (status, body) in zip(cases, replies, strict=True):
        code = body.get("error", {}).get("code")
        if status != 422 or code != case.code:
            raise SystemExit(f"{case.name}: expected 422 {case.code}, got {status} {body}")


async def measure(pid: int, label: str, work: Awaitable[object]) -> dict[str, object]:
    reset_peak(pid)
    before = status_kb(pid, "VmRSS")
    started = time.perf_counter()
    await work
    seconds = time.perf_counter() - started
    peak = status_kb(pid, "VmHWM")
    return {"phase": label, "rss_before_mb": before / 1024, "peak_mb": peak / 1024,
            "above_before_mb": (peak - before) / 1024, "seconds": seconds}


async def run(args: argparse.Namespace) -> None:
    admin = admin_database_url()
    url = await create_database(admin)
    redis = RedisProcess()
    redis.start()
    work = Path(tempfile.mkdtemp(prefix="shoplink-bombs-"))
    results: list[dict[str, object]] = []
    try:
        token = await seed(url)
        clip = make_video(work / "clip.mp4", seconds=4.0)
        cases = battery(clip.path.read_bytes())
        largest = mjpg_avi([flat_jpeg(4096, 2160)] * 5, 4096, 2160)
        serve = ServeProcess(url, redis.url, work / "spool", SECRET, rate_limits="false",
                             media_dir=str(work / "media"))
        await asyncio.to_thread(serve.start)
        assert serve.proc is not None
        pid = serve.proc.pid
        try:
            async with aiohttp.ClientSession() as http:
                status, body = await upload(http, serve.url, token, "clip.mp4", clip.path.read_bytes())
                assert status == 201, body
                idle = status_kb(pid, "VmRSS") / 1024
                results.append(await measure(pid, "battery, one file at a time", _each(http, serve.url, token, cases)))
                results.append(await measure(pid, f"battery, all 12 at once x {args.rounds}",
                                             _rounds(http, serve.url, token, cases, args.rounds)))
                results.append(await measure(pid, "largest accepted: 5 frames of 4096x2160",
                                             _accept(http, serve.url, token, largest)))
        finally:
            serve.terminate()
        if args.unbounded:
            lifted = ServeProcess(url, redis.url, work / "spool2", SECRET, rate_limits="false",
                                  media_dir=str(work / "media"), max_video_pixels=str(16384 * 16384))
            await asyncio.to_thread(lifted.start)
            assert lifted.proc is not None
            try:
                async with aiohttp.ClientSession() as http:
                    await upload(http, lifted.url, token, "clip.mp4", clip.path.read_bytes())
                    bomb = cases[0]
                    results.append(await measure(lifted.proc.pid, "16000x16000 bomb, pixel limit lifted",
                                                 upload(http, lifted.url, token, bomb.name, bomb.data)))
            finally:
                lifted.terminate()
    finally:
        redis.cleanup()
        await drop_database(admin, url)
    print(f"idle after one ordinary upload: {idle:.1f} MB resident (one serve process, 2 media threads)")
    print(f"{'phase':45} {'RSS before':>11} {'peak':>9} {'peak - before':>14} {'seconds':>8}")
    for r in results:
        print(f"{r['phase']:45} {r['rss_before_mb']:10.1f}M {r['peak_mb']:8.1f}M "
              f"{r['above_before_mb']:13.1f}M {r['seconds']:8.2f}")
    worst = max(float(str(r["peak_mb"])) for r in results[:2]) - idle
    print(f"battery: peak {worst:.1f} MB above idle (target < 200 MB)")


async def _each(http: aiohttp.ClientSession, base: str, token: str, cases: list[Hostile]) -> None:
    for case in cases:
        await refuse_all(http, base, token, [case])


async def _rounds(http: aiohttp.ClientSession, base: str, token: str, cases: list[Hostile], rounds: int) -> None:
    for _ in range(rounds):
        await refuse_all(http, base, token, cases)


async def _accept(http: aiohttp.ClientSession, base: str, token: str, data: bytes) -> None:
    status, body = await upload(http, base, token, "largest.avi", data)
    if status != 201:
        raise SystemExit(f"the largest allowed frame was refused: {status} {body}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--unbounded", action="store_true",
                        help="also measure the 16000x16000 bomb with the pixel limit lifted")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
