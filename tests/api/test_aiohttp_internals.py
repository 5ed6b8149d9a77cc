"""aiohttp's private and undocumented API that shoplink relies on (src/shoplink/aiohttp_internals.py),
checked by name and over real HTTP. A failure here means the installed aiohttp changed something the
click's preformatted 302, the server-level fast path or the live fan-out depends on: adapt
aiohttp_internals.py to that release and widen TESTED_AIOHTTP with pyproject.toml; never relax a test."""

from __future__ import annotations

import asyncio
import inspect
import tomllib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import ClientSession, HttpVersion11, web
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler as Connection
from multidict import CIMultiDict
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from shoplink.aiohttp_internals import (
    TESTED_AIOHTTP,
    PreformattedResponse,
    RequestHandler,
    body_transport,
    http_chunk,
    wrap_request_handler,
)

from support.services import free_port

ROOT = Path(__file__).resolve().parents[2]
SEE = "aiohttp changed an internal that src/shoplink/aiohttp_internals.py relies on"
MESSAGE = b"HTTP/1.1 302 Found\r\nContent-Length: 0\r\nLocation: /there\r\n\r\n"


def test_pyproject_allows_exactly_the_tested_aiohttp_releases() -> None:
    with (ROOT / "pyproject.toml").open("rb") as f:
        deps = [Requirement(d) for d in tomllib.load(f)["project"]["dependencies"]]
    (declared,) = [d for d in deps if d.name == "aiohttp"]
    assert declared.specifier == SpecifierSet(TESTED_AIOHTTP), \
        "pyproject.toml's aiohttp range and aiohttp_internals.TESTED_AIOHTTP must change together"
    assert Version(aiohttp.__version__) in SpecifierSet(TESTED_AIOHTTP), \
        f"aiohttp {aiohttp.__version__} is outside the tested range {TESTED_AIOHTTP}"


async def test_the_private_names_relied_on_exist_as_used() -> None:
    response = web.StreamResponse()
    assert response._eof_sent is False, f"{SEE}: StreamResponse._eof_sent"
    assert response._keep_alive is None, f"{SEE}: StreamResponse._keep_alive"
    response._keep_alive = True
    assert response.keep_alive is True, f"{SEE}: keep_alive no longer reads _keep_alive"
    assert isinstance(response._headers, CIMultiDict) and response._headers is response.headers, \
        f"{SEE}: StreamResponse._headers is no longer the headers multidict"
    hook = web.BaseRequest._prepare_hook
    assert inspect.iscoroutinefunction(hook), f"{SEE}: BaseRequest._prepare_hook"
    assert list(inspect.signature(hook).parameters) == ["self", "response"], f"{SEE}: _prepare_hook(response)"
    assert "_prepare_hook" in vars(web.Request), f"{SEE}: Request._prepare_hook (the prepare signal)"
    assert "writer" in dir(web.BaseRequest), f"{SEE}: BaseRequest.writer"

    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response()

    assert web.Server(handler).request_handler is handler, f"{SEE}: Server.request_handler"


@asynccontextmanager
async def serving(app: web.Application,
                  wrap: Callable[[RequestHandler], RequestHandler] | None = None) -> AsyncIterator[int]:
    """`app` on a real socket (the port), with the server's handler wrapped first if asked."""
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        if wrap is not None:
            assert runner.server is not None
            wrap_request_handler(runner.server, wrap)
        port = free_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        yield port
    finally:
        await runner.cleanup()


async def read_exactly(reader: asyncio.StreamReader, size: int) -> bytes:
    async with asyncio.timeout(5):
        return await reader.readexactly(size)


async def test_a_preformatted_response_is_written_once_and_keeps_the_connection() -> None:
    async def preformatted(request: web.Request) -> web.StreamResponse:
        response = PreformattedResponse(302, MESSAGE)
        if request.path == "/twice":  # aiohttp prepares it again after the handler: nothing more
            await response.prepare(request)
        return response

    async def normal(request: web.Request) -> web.StreamResponse:
        return web.Response(text="after")

    async def signal(request: web.Request, response: web.StreamResponse) -> None:
        if request.path == "/signal":  # the prepare hook ran, and what it added is written
            response.headers["X-Signal"] = "yes"

    app = web.Application()
    app.router.add_get("/once", preformatted)
    app.router.add_get("/twice", preformatted)
    app.router.add_get("/signal", preformatted)
    app.router.add_get("/normal", normal)
    app.on_response_prepare.append(signal)
    with_signal = MESSAGE[:-2] + b"X-Signal: yes\r\n\r\n"
    async with serving(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"".join(b"GET /%s HTTP/1.1\r\nHost: x\r\n\r\n" % path
                                  for path in (b"once", b"twice", b"signal", b"normal")))
            wire = await read_exactly(reader, 2 * len(MESSAGE) + len(with_signal))
            assert wire == MESSAGE + MESSAGE + with_signal, f"{SEE}: PreformattedResponse.prepare"
            # Nothing else was written after them (no second message, no chunk terminator), and the
            # connection was kept (_keep_alive): the next answer follows on it, from aiohttp itself.
            async with asyncio.timeout(5):
                head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK\r\n"), head
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:")))
            assert await read_exactly(reader, length) == b"after"
            writer.write(b"GET /once HTTP/1.1\r\nHost: x\r\n\r\n")
            assert await read_exactly(reader, len(MESSAGE)) == MESSAGE
        finally:
            writer.close()


async def test_a_wrapped_request_handler_answers_new_connections() -> None:
    async def app_route(request: web.Request) -> web.StreamResponse:
        return web.Response(text="app")

    def wrap(app_handler: RequestHandler) -> RequestHandler:
        async def dispatch(request: web.BaseRequest) -> web.StreamResponse:
            if request.path == "/wrapped":
                return web.Response(text="wrapper")
            return await app_handler(request)
        return dispatch

    app = web.Application()
    app.router.add_get("/app", app_route)
    async with serving(app, wrap) as port, ClientSession() as http:
        for path, text in (("/wrapped", "wrapper"), ("/app", "app")):
            async with http.get(f"http://127.0.0.1:{port}{path}") as reply:
                assert (reply.status, await reply.text()) == (200, text), f"{SEE}: Server.request_handler"


async def stream(request: web.Request) -> web.StreamResponse:
    """As the live SSE view does: prepare, one write through aiohttp, the rest to the transport."""
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    chunked = request.version >= HttpVersion11
    if chunked:
        response.enable_chunked_encoding()
    with pytest.raises(RuntimeError, match="prepared response"):
        body_transport(request, response)
    await response.prepare(request)
    await response.write(b"first|")
    transport = body_transport(request, response)
    assert transport is not None
    transport.write(http_chunk(b"second|") if chunked else b"second|")
    await response.write_eof()
    return response


async def test_a_body_written_to_the_transport_after_prepare_is_well_framed() -> None:
    app = web.Application()
    app.router.add_get("/", stream)
    async with serving(app) as port:
        async with ClientSession() as http, http.get(f"http://127.0.0.1:{port}/") as reply:
            assert reply.headers["Transfer-Encoding"] == "chunked"
            assert await reply.read() == b"first|second|", f"{SEE}: a direct chunked body"
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            async with asyncio.timeout(5):
                await reader.readuntil(b"\r\n\r\n")
                body = await reader.readuntil(b"0\r\n\r\n")
            assert body == b"6\r\nfirst|\r\n7\r\nsecond|\r\n0\r\n\r\n", f"{SEE}: chunk framing"
        finally:
            writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET / HTTP/1.0\r\n\r\n")  # no chunking: the body ends with the connection
            async with asyncio.timeout(5):
                wire = await reader.read()
            head, _, body = wire.partition(b"\r\n\r\n")
            assert b"transfer-encoding" not in head.lower() and body == b"first|second|", wire
        finally:
            writer.close()


async def test_the_names_the_read_timeouts_rely_on_exist_as_used() -> None:
    """4-6 of aiohttp_internals (install_read_timeouts); the behaviour is tests/api/test_slow_clients.py."""
    async def handler(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response()

    server = web.Server(handler, keepalive_timeout=1.0)
    connection = server()
    assert type(connection) is Connection, f"{SEE}: Server.__call__ builds a RequestHandler"
    assert server._loop is asyncio.get_running_loop() and server._kwargs == {"keepalive_timeout": 1.0}, \
        f"{SEE}: Server._loop / Server._kwargs"
    for name in ("_messages", "_request_count", "_request_in_progress", "_close", "_force_close", "_loop"):
        assert hasattr(connection, name), f"{SEE}: RequestHandler.{name}"
    assert connection._request_count == 0 and not connection._messages and not connection._request_in_progress
    for method in ("connection_made", "connection_lost", "data_received", "close", "force_close"):
        assert callable(getattr(Connection, method, None)), f"{SEE}: RequestHandler.{method}"
    for method in ("is_eof", "set_exception", "feed_eof"):
        assert callable(getattr(StreamReader, method, None)), f"{SEE}: StreamReader.{method}"
    assert isinstance(StreamReader.total_raw_bytes, property), f"{SEE}: StreamReader.total_raw_bytes"
