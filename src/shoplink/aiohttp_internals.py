"""Every use of aiohttp's private or undocumented API, in one module.

The click and the live fan-out are cheaper with a few shortcuts through aiohttp's internals
(measured in bench/results/clicks.md and bench/results/live.md). They live here and nowhere
else; pyproject.toml allows only the aiohttp releases they were checked against
(`TESTED_AIOHTTP`), and tests/api/test_aiohttp_internals.py checks each assumption below over
real HTTP, so an upgrade that changes one fails there, by name. To move to a new aiohttp: widen
`TESTED_AIOHTTP` and pyproject.toml together, run that test, and fix here what it reports.

What is relied on:

1. `PreformattedResponse` (the click's 302, shoplink.clicks.redirect): a `web.StreamResponse`
   whose `prepare` writes a complete HTTP/1.1 message to the transport itself. It reads and sets
   `StreamResponse._eof_sent` (finished: aiohttp's request loop writes nothing more, `prepare`
   and `write_eof` do nothing), sets `_keep_alive` (what `keep_alive` returns: the request loop
   keeps the connection open), reads `_headers` (the CIMultiDict behind `headers`, without the
   property call), awaits `BaseRequest._prepare_hook(response)` (the app's response-prepare
   signal, as `StreamResponse._start` sends it) and `BaseRequest.writer.drain()`.
2. `wrap_request_handler` (the server-level fast path, shoplink.fastpath): `web.Server`'s
   `request_handler` attribute, which each new connection copies when it opens.
3. `body_transport` and `http_chunk` (the live SSE fan-out, shoplink.live): once a streaming
   response is prepared and one non-empty `write` went through aiohttp, the rest of its body is
   written to the transport directly, framed by `http_chunk` when the response is chunked.
   aiohttp's `StreamWriter` holds nothing back once `write` returns (no compression), and
   `write_eof` then ends a chunked body with its last chunk.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

TESTED_AIOHTTP = ">=3.14,<3.15"  # pyproject.toml's aiohttp range (a test keeps them equal)

RequestHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

_UNSAFE = re.compile(r"[\r\n\x00]")


class PreformattedResponse(web.StreamResponse):
    """A complete response message written to the transport as is by `prepare`.

    Only for messages that keep the connection open (a GET over HTTP/1.1 with keep-alive:
    ClickService.answer checks); aiohttp's request loop
    then reads `keep_alive` and goes on with the next request on the connection. Response-prepare
    signals still run (shoplink registers none), and headers that they or a middleware add to
    `headers` are written after the preformatted ones."""

    def __init__(self, status: int, message: bytes) -> None:
        super().__init__(status=status)
        self._message = message

    async def prepare(self, request: web.BaseRequest) -> None:
        if self._eof_sent:
            return
        await request._prepare_hook(self)  # what StreamResponse._start does before the headers
        message = self._message
        if self._headers:
            message = message[:-2] + _serialize(self._headers) + b"\r\n"
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client went away")
        self._keep_alive = True
        self._eof_sent = True
        transport.write(message)
        await request.writer.drain()  # waits only when the client stopped reading

    async def write_eof(self, data: bytes = b"") -> None:
        return None


def _serialize(headers: Mapping[str, str]) -> bytes:
    lines = []
    for name, value in headers.items():
        if _UNSAFE.search(name) or _UNSAFE.search(value):
            raise ValueError(f"newline or carriage return in the {name!r} header")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode()


def wrap_request_handler(server: web.Server, wrap: Callable[[RequestHandler], RequestHandler]) -> None:
    """Make `wrap(current handler)` the handler of `server`'s connections. Each connection
    copies the server's handler when it opens: call after `runner.setup()` and before the site
    starts (connections already open keep the old one)."""
    server.request_handler = wrap(server.request_handler)


def http_chunk(data: bytes) -> bytes:
    """`data` framed for Transfer-Encoding: chunked (as aiohttp frames a `write`)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def body_transport(request: web.BaseRequest, response: web.StreamResponse) -> asyncio.Transport | None:
    """The transport the rest of `response`'s body may be written to directly (chunk-framed by
    `http_chunk` when `response.chunked`); None once the connection is gone. Call after
    `prepare` and one non-empty `write` (so that the headers are out and aiohttp holds nothing
    back); `write_eof` ends the body as usual."""
    if not response.prepared or response.compression:
        raise RuntimeError("a direct body needs a prepared response without compression")
    return request.transport
