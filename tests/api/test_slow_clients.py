"""Slow clients are cut (SHOPLINK_HEADER_TIMEOUT_S, SHOPLINK_BODY_TIMEOUT_S, SHOPLINK_BODY_MIN_RATE),
with real sockets that send their request slowly. The sleeps here pace the slow clients."""

from __future__ import annotations

import asyncio
import logging
import time
from urllib.parse import urlsplit

import orjson
import pytest
from aiohttp.test_utils import TestServer

from support.api import ServerFactory

HEADER_S = 1.0
BODY_S = 1.0
MIN_RATE = 1000.0  # bytes per second


@pytest.fixture
async def slow_server(start_server: ServerFactory) -> TestServer:
    return await start_server(header_timeout_s=HEADER_S, body_timeout_s=BODY_S, body_min_rate=MIN_RATE)


async def _connect(server: TestServer) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    url = urlsplit(str(server.make_url("/")))
    assert url.hostname is not None and url.port is not None
    return await asyncio.open_connection(url.hostname, url.port)


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """Everything the server sent until it closed the connection (fails if it did not close)."""
    received = b""
    async with asyncio.timeout(seconds):
        while chunk := await reader.read(65536):
            received += chunk
    return received


async def _response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One HTTP/1.1 response with a Content-Length: (status, body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    return status, await reader.readexactly(length)


async def test_a_client_sending_its_headers_slowly_is_disconnected(slow_server: TestServer) -> None:
    reader, writer = await _connect(slow_server)
    started = time.monotonic()
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: shop\r\n")

    async def trickle() -> None:
        for n in range(100):
            await asyncio.sleep(0.3)  # one header line every 0.3 s, never the blank line
            writer.write(b"X-Slow-%d: 1\r\n" % n)

    sender = asyncio.create_task(trickle())
    try:
        received = await _closed_within(reader, HEADER_S + 3)
    finally:
        sender.cancel()
        writer.close()
    elapsed = time.monotonic() - started
    assert HEADER_S - 0.1 <= elapsed < HEADER_S + 2, elapsed
    assert received.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), received
    # A client that sends its request at once is served as usual meanwhile and after.
    reader, writer = await _connect(slow_server)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: shop\r\n\r\n")
    assert (await _response(reader))[0] == 200
    writer.close()


async def test_a_connection_that_sends_nothing_is_closed(slow_server: TestServer) -> None:
    reader, writer = await _connect(slow_server)
    try:
        assert await _closed_within(reader, HEADER_S + 3) == b""  # nothing asked: nothing answered
    finally:
        writer.close()


async def test_an_idle_keep_alive_connection_stays_but_a_slow_next_request_is_cut(slow_server: TestServer) -> None:
    reader, writer = await _connect(slow_server)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: shop\r\n\r\n")
        assert (await _response(reader))[0] == 200
        await asyncio.sleep(HEADER_S + 0.5)  # idle between requests: keep-alive, not a slow head
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: shop\r\n\r\n")
        assert (await _response(reader))[0] == 200
        writer.write(b"GET /healthz HTTP/1.1\r\n")  # the next one stalls after its first line
        started = time.monotonic()
        received = await _closed_within(reader, HEADER_S + 3)
        assert received.startswith(b"HTTP/1.1 408") and time.monotonic() - started < HEADER_S + 2
    finally:
        writer.close()


def _form_head(length: int) -> bytes:
    return (b"POST /signin HTTP/1.1\r\nHost: shop\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            b"Content-Length: %d\r\n\r\n" % length)


async def test_a_slow_body_is_answered_408_and_cut(slow_server: TestServer,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    reader, writer = await _connect(slow_server)
    started = time.monotonic()
    writer.write(_form_head(2000) + b"token=")

    async def trickle() -> None:
        for _ in range(200):
            await asyncio.sleep(0.2)  # five bytes a second: far below SHOPLINK_BODY_MIN_RATE
            writer.write(b"x")

    sender = asyncio.create_task(trickle())
    try:
        async with asyncio.timeout(BODY_S + 3):
            status, body = await _response(reader)
        assert status == 408 and orjson.loads(body)["error"]["code"] == "request_timeout"
        await _closed_within(reader, 3)
    finally:
        sender.cancel()
        writer.close()
    assert BODY_S - 0.1 <= time.monotonic() - started < BODY_S + 2
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # a client's fault, not ours


async def test_a_body_that_keeps_the_minimum_rate_is_not_cut(slow_server: TestServer) -> None:
    """3,000 bytes a second for 2.5 s (longer than SHOPLINK_BODY_TIMEOUT_S): above the minimum
    rate, so the request completes (a wrong token: the sign-in page, 401)."""
    payload = b"token=slk_" + b"x" * 7490
    reader, writer = await _connect(slow_server)
    try:
        writer.write(_form_head(len(payload)))
        for start in range(0, len(payload), 300):
            writer.write(payload[start:start + 300])
            await asyncio.sleep(0.1)
        status, _ = await _response(reader)
        assert status == 401
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: shop\r\n\r\n")  # and the connection lives on
        assert (await _response(reader))[0] == 200
    finally:
        writer.close()
