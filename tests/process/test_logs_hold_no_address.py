"""No client address in any log line: `shoplink serve` as a process, logging at debug level with
the access log on, gets requests aiohttp cannot parse (a header over 8,190 bytes makes aiohttp
log an ERROR naming the client, with a traceback), a slow head, a slow body and ordinary ones from
127.0.0.2; then every line it wrote is searched for that address."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import asyncpg
from aiohttp import ClientSession, TCPConnector

from support.click_server import ServeProcess
from support.services import RedisProcess

CLIENT = "127.0.0.2"  # the server binds 127.0.0.1: any address seen in a log line came from a client
SECRET = "test-secret-key-0123456789abcdef"


async def _send(port: int, data: bytes, *, pause_after: float = 0.0) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(CLIENT, 0))
    try:
        writer.write(data)
        if pause_after:
            await asyncio.sleep(pause_after)  # a slow client: the server's timeout ends it
        async with asyncio.timeout(10):
            return await reader.read()
    finally:
        writer.close()


async def test_no_log_line_names_the_client(pool: asyncpg.Pool, database_url: str, redis_proc: RedisProcess,
                                            tmp_path: Path) -> None:
    serve = ServeProcess(database_url, redis_proc.url, tmp_path / "spool", SECRET, capture_stderr=True,
                         log_level="debug", access_log="true", header_timeout_s="0.5", body_timeout_s="0.5")
    await asyncio.to_thread(serve.start)
    try:
        oversized = await _send(serve.port, b"GET /healthz HTTP/1.1\r\nHost: shop\r\nX-Big: "
                                + b"a" * 9000 + b"\r\n\r\n")
        assert oversized.startswith(b"HTTP/1.0 400"), oversized[:100]
        long_line = await _send(serve.port, b"GET /" + b"b" * 9000 + b" HTTP/1.1\r\nHost: shop\r\n\r\n")
        assert b" 400 " in long_line[:20]
        for _ in range(2):  # a bad method: aiohttp's first-request case, then a later one
            await _send(serve.port, b"G\x01T / HTTP/1.1\r\n\r\n")
        await _send(serve.port, b"GET /healthz HTTP/1.1\r\nHost: shop\r\n\r\nP\x00ST / HTTP/1.1\r\n\r\n")
        await _send(serve.port, b"GET /healthz HTTP/1.1\r\nHost: shop\r\n", pause_after=1.0)
        await _send(serve.port, b"POST /signin HTTP/1.1\r\nHost: shop\r\nContent-Length: 100\r\n"
                                b"Content-Type: application/x-www-form-urlencoded\r\n\r\ntoken=", pause_after=1.0)
        async with ClientSession(connector=TCPConnector(local_addr=(CLIENT, 0))) as http:
            for path in ("/healthz", "/r/nosuchcode", "/api/v1/me", "/signin", "/nowhere"):
                async with http.get(serve.url + path, allow_redirects=False) as resp:
                    await resp.read()
            async with http.get(serve.url + "/api/v1/me", headers={"Authorization": "Bearer slk_x"}) as resp:
                assert resp.status == 401
    finally:
        serve.terminate()
    lines = "".join(serve.stderr_lines).splitlines()  # all of it: terminate() read the pipe to its end
    assert not [line for line in lines if CLIENT in line]
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert any(r["logger"] == "shoplink.access" for r in records), lines[-20:]  # the access log ran
    refused = [r for r in records if r["logger"] == "aiohttp.server" and "malformed" in r["event"]]
    assert refused and all(r["level"] in ("warning", "debug") and "exc" not in r for r in refused), refused
    assert any("LineTooLong" in r["event"] for r in refused)
