"""The click's 302, written as one preformatted HTTP/1.1 message.

aiohttp's generic response path (a `web.Response`, header multidict, `prepare` with the
response-prepare signal, header serialisation, `write_eof`) costs about 11 µs of server CPU per
request, as much as everything the click itself does; the redirect is always the same shape, so
the common case — a GET over HTTP/1.1 that keeps the connection open — is built as one string
and handed to the transport in one write by `shoplink.aiohttp_internals.PreformattedResponse`
(bench/results/clicks.md). Anything else (HEAD, HTTP/1.0, `Connection: close`, the 404/410
pages) takes aiohttp's normal path.

Header values come only from the resolver's verified Location (no control characters: the
URL check rejects them, and `Target` refuses them again), a hex cookie and a ULID.
"""

from __future__ import annotations

from email.utils import formatdate

from aiohttp.http import SERVER_SOFTWARE

NO_STORE = "no-store, private"
_HEAD = ("HTTP/1.1 302 Found\r\nCache-Control: " + NO_STORE + "\r\nContent-Length: 0\r\nServer: "
         + SERVER_SOFTWARE + "\r\nLocation: ")
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
