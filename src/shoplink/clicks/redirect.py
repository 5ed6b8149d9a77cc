"""The click's 302, written as one preformatted HTTP/1.1 message.

aiohttp's generic response path (a `web.Response`, header multidict, `prepare` with the
response-prepare signal, header serialisation, `write_eof`) costs about 11 µs of server CPU per
request, as much as everything the click itself does; the redirect is always the same shape, so
the common case — a GET over HTTP/1.1 that keeps the connection open — is built as one string
and handed to the transport in one write (bench/results/clicks.md). Anything else (HEAD,
HTTP/1.0, `Connection: close`, the 404/410 pages) takes aiohttp's normal path.

Header values come only from the resolver's verified Location (no control characters: the
URL check rejects them, and `Target` refuses them again), a hex cookie and a ULID.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from email.utils import formatdate

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE

NO_STORE = "no-store, private"
_HEAD = ("HTTP/1.1 302 Found\r\nCache-Control: " + NO_STORE + "\r\nContent-Length: 0\r\nServer: "
         + SERVER_SOFTWARE + "\r\nLocation: ")
_UNSAFE = re.compile(r"[\r\n\x00]")
_date_s = -1
_date = ""


def http_date(now_s: int) -> str:
    """The Date header value for the second `now_s` (formatted once per second)."""
    global _date_s, _date
    if now_s != _date_s:
        _date = formatdate(now_s, usegmt=True)
        _date_s = now_s
    return _date


def redirect_message(location: str, set_cookie: str | None, now_s: int) -> bytes:
    """The whole 302 response (status line, headers, empty body)."""
    date = _date if now_s == _date_s else http_date(now_s)
    # f-strings: one join, where a chain of + copies the growing message at each step.
    if set_cookie is None:
        return f"{_HEAD}{location}\r\nDate: {date}\r\n\r\n".encode()
    return f"{_HEAD}{location}\r\nSet-Cookie: {set_cookie}\r\nDate: {date}\r\n\r\n".encode()


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
