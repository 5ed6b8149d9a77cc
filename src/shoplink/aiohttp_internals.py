"""Every use of aiohttp's private or undocumented API, in one module.

The click and the live fan-out are cheaper with a few shortcuts through aiohttp's internals
(measured in bench/results/clicks.md and bench/results/live.md). They live here and nowhere
else; pyproject.toml allows only the aiohttp releases they were checked against
(`TESTED_AIOHTTP`), and tests/api/test_aiohttp_internals.py checks each assumption below over
real HTTP, so an upgrade that changes one fails there, by name. To move to a new aiohttp: widen
`TESTED_AIOHTTP` and pyproject.toml together, run that test, and fix here what it reports.

What is relied on:

1. `PreformattedResponse` (the click's 302, shoplink.clicks.redirect; the beacon's 204,
   shoplink.funnel.views): a `web.StreamResponse` whose `prepare` writes a complete HTTP/1.1
   message to the transport itself. It reads and sets
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

aiohttp's server has no timeout for reading a request's head or body (a client sending one
header line every few seconds, or a body a byte at a time, holds its connection forever:
"slowloris"). `install_read_timeouts` adds both (tests/api/test_slow_clients.py, with real slow
sockets) by making a `web.Server`'s connections `_TimedRequestHandler`s:

4. `web.Server.__call__` is the protocol factory of the listening sockets (the site calls
   `loop.create_server(server, ...)` at start) and builds `RequestHandler(server,
   loop=server._loop, **server._kwargs)`; the server is an ordinary instance whose class can be
   switched to a subclass that builds the timed handler instead.
5. `RequestHandler.connection_made` / `data_received` receive the connection and every byte of
   it; `data_received` parses and appends each complete request head, with its body stream, to
   `RequestHandler._messages` and counts it in `_request_count`; `_request_in_progress` is true
   while a handler runs, and `_close` / `_force_close` say the connection is closing
   (`data_received` then ignores what comes). `close()` closes it after the current response;
   `force_close()` at once.
6. A request body is a `streams.StreamReader`: `is_eof()`, `total_raw_bytes` (bytes received so
   far), `set_exception()` (the next read raises it) and `feed_eof()` (aiohttp then does not
   read the rest of the body before closing).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler as Connection

TESTED_AIOHTTP = ">=3.14,<3.15"  # pyproject.toml's aiohttp range (a test keeps them equal)

RequestHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

_UNSAFE = re.compile(r"[\r\n\x00]")


class PreformattedResponse(web.StreamResponse):
    """A complete response message written to the transport as is by `prepare`.

    Only for messages that keep the connection open, on requests whose body is read (a GET over
    HTTP/1.1 with keep-alive: ClickService.answer checks; a beacon's POST, read whole:
    funnel/views.py); aiohttp's request loop then reads `keep_alive` and goes on with the next
    request on the connection. Response-prepare signals still run (shoplink registers none), and
    headers that they or a middleware add to `headers` are written after the preformatted ones,
    but for those `included` says the message holds already."""

    def __init__(self, status: int, message: bytes, included: Mapping[str, str] | None = None) -> None:
        """`included`: headers the message holds already; the same name and value set on
        `headers` (by a CORS wrapper, say) is not written twice."""
        super().__init__(status=status)
        self._message = message
        self._included = included or {}

    async def prepare(self, request: web.BaseRequest) -> None:
        if self._eof_sent:
            return
        await request._prepare_hook(self)  # what StreamResponse._start does before the headers
        message = self._message
        if self._headers:
            included = self._included
            extra = [(k, v) for k, v in self._headers.items() if included.get(k) != v]
            if extra:
                message = message[:-2] + _serialize(extra) + b"\r\n"
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client went away")
        self._keep_alive = True
        self._eof_sent = True
        transport.write(message)
        await request.writer.drain()  # waits only when the client stopped reading

    async def write_eof(self, data: bytes = b"") -> None:
        return None


def _serialize(headers: list[tuple[str, str]]) -> bytes:
    lines = []
    for name, value in headers:
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


# ---- read timeouts (4-6) ------------------------------------------------------------------

REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"


@dataclass(frozen=True)
class ReadTimeouts:
    """`header_s`: longest time from a connection's start, or from the first byte of a later
    request on it, to the end of the request's head. A request body must be complete within
    `body_s` of its head plus one second per `body_min_rate` bytes received (a body that keeps
    coming at that rate is never cut). `body_error()`: what a handler reading the body then
    gets (a 408 for the client)."""

    header_s: float
    body_s: float
    body_min_rate: float
    body_error: Callable[[], BaseException]


class _TimedRequestHandler(Connection):
    """aiohttp's connection protocol with the header and body read timeouts."""

    def __init__(self, manager: web.Server, *, timeouts: ReadTimeouts, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._timeouts = timeouts
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_bytes = False  # part of the awaited head has arrived
        self._body: StreamReader | None = None  # the body being received
        self._body_started = 0.0
        self._body_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._start_head_clock()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._stop_head_clock()
        self._stop_body_clock()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._close or self._force_close:
            return
        receiving_body = self._body is not None and not self._body.is_eof()
        if data and not receiving_body:
            self._head_bytes = True
            if self._head_timer is None:  # the first byte of a new request
                self._start_head_clock()
        heads = self._request_count
        super().data_received(data)
        if self._request_count != heads:  # one or more complete heads
            self._stop_head_clock()
            self._head_bytes = False
            self._stop_body_clock()
            payload = self._messages[-1][1] if self._messages else None
            if isinstance(payload, StreamReader) and not payload.is_eof():
                self._body = payload
                self._body_started = self._loop.time()
                self._schedule_body_check(self._body_started + self._timeouts.body_s)
        if self._body is not None and self._body.is_eof():
            self._stop_body_clock()

    # ---- the head ------------------------------------------------------------------------

    def _start_head_clock(self) -> None:
        self._stop_head_clock()
        self._head_timer = self._loop.call_later(self._timeouts.header_s, self._head_timed_out)

    def _stop_head_clock(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._request_in_progress or self._messages:  # a head arrived meanwhile
            return
        transport = self.transport
        if transport is not None and self._head_bytes and not transport.is_closing():
            transport.write(REQUEST_TIMEOUT)  # sent before the close: a half-sent request gets an answer
        self.force_close()

    # ---- the body ------------------------------------------------------------------------

    def _schedule_body_check(self, when: float) -> None:
        self._body_timer = self._loop.call_at(when, self._check_body)

    def _stop_body_clock(self) -> None:
        self._body = None
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _check_body(self) -> None:
        self._body_timer = None
        body = self._body
        if body is None or body.is_eof():
            self._body = None
            return
        limits = self._timeouts
        deadline = self._body_started + limits.body_s + body.total_raw_bytes / limits.body_min_rate
        if self._loop.time() < deadline:
            self._schedule_body_check(deadline)
            return
        self._body = None
        if not self._request_in_progress:  # its handler is done: aiohttp's lingering read is bounded
            return
        body.set_exception(limits.body_error())  # the handler's next read raises it (a 408)
        body.feed_eof()  # nothing more is read from this connection...
        self.close()  # ...which closes after the response


class _TimedServer(web.Server):
    """A `web.Server` whose connections have read timeouts (`install_read_timeouts`)."""

    _read_timeouts: ReadTimeouts

    def __call__(self) -> Connection:
        return _TimedRequestHandler(self, loop=self._loop, timeouts=self._read_timeouts, **self._kwargs)


def install_read_timeouts(server: web.Server, timeouts: ReadTimeouts) -> None:
    """Give every later connection of `server` (a runner's, after `setup()`, before the site
    accepts connections) the header and body read timeouts of `timeouts`."""
    server.__class__ = _TimedServer
    assert isinstance(server, _TimedServer)
    server._read_timeouts = timeouts
