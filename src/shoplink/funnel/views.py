"""HTTP: POST /v1/events (the player's beacons, from any origin).

`shoplink serve` answers a plain `POST /v1/events` and its preflight in the server, before
aiohttp's router and middleware (`fast_handlers`, installed by `app.install_fast_dispatch`; see
shoplink/fastpath.py); the route below answers the rest (a percent-encoded path, say) the same.
"""

from __future__ import annotations

import time

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE, HttpVersion11

from shoplink.aiohttp_internals import PreformattedResponse
from shoplink.clicks.redirect import http_date
from shoplink.errors import PayloadTooLarge
from shoplink.fastpath import ExactHandler, fast_cors_route, public_cors
from shoplink.funnel.models import MAX_BODY_BYTES
from shoplink.funnel.service import FunnelService
from shoplink.funnel.validate import events_of
from shoplink.keys import FUNNEL
from shoplink.security.cors import CROSS_ORIGIN_HEADERS, PREFLIGHT_POST_HEADERS

routes = web.RouteTableDef()
_NO_CONTENT = {"Cache-Control": "no-store"}
PATH = "/v1/events"


async def _body(request: web.BaseRequest) -> bytes:
    """The body, refused (413) beyond MAX_BODY_BYTES before more than that is read; whole even
    when it arrives in pieces."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"at most {MAX_BODY_BYTES} bytes of events per request", code="payload_too_large")
    content = request.content
    body = await content.read(MAX_BODY_BYTES + 1)
    while len(body) <= MAX_BODY_BYTES and not content.at_eof():
        more = await content.read(MAX_BODY_BYTES + 1 - len(body))
        if not more:
            break
        body += more
    if len(body) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"at most {MAX_BODY_BYTES} bytes of events per request", code="payload_too_large")
    return body


async def _accept(request: web.BaseRequest, funnel: FunnelService) -> web.StreamResponse:
    """navigator.sendBeacon / fetch keepalive from the player: 204 once queued (never waits on Redis)."""
    beacon = events_of(await _body(request))
    headers = request.headers
    await funnel.accept(beacon, user_agent=headers.get("User-Agent", ""), cookie_header=headers.get("Cookie"),
                        remote=request.remote, referer=headers.get("Referer"))
    if request.version == HttpVersion11 and request.keep_alive:  # the common case: one preformatted write
        return PreformattedResponse(204, no_content_message(int(time.time())), CROSS_ORIGIN_HEADERS)
    return web.Response(status=204, headers=_NO_CONTENT)


def no_content_message(now_s: int) -> bytes:
    """The whole 204 of a beacon on a kept-alive HTTP/1.1 connection: what aiohttp sends for
    `_NO_CONTENT` and the public CORS headers, as one message (clicks/redirect.py: aiohttp's
    generic response path costs more than the 204 itself)."""
    global _message_s, _message
    if now_s != _message_s:
        _message = (_NO_CONTENT_HEAD + f"Date: {http_date(now_s)}\r\n\r\n").encode()
        _message_s = now_s
    return _message


_NO_CONTENT_HEAD = ("HTTP/1.1 204 No Content\r\nCache-Control: no-store\r\n"
                    + "".join(f"{name}: {value}\r\n" for name, value in CROSS_ORIGIN_HEADERS.items())
                    + f"Server: {SERVER_SOFTWARE}\r\n")
_message_s = -1
_message = b""


@routes.post(PATH)
@fast_cors_route  # public and hot: skips the middleware chain (shoplink/fastpath.py)
async def post_events(request: web.Request) -> web.StreamResponse:
    return await _accept(request, request.app[FUNNEL])


def fast_handlers(funnel: FunnelService) -> dict[tuple[str, str], ExactHandler]:
    """The server-level fast path's exact routes (shoplink.fastpath.install): the beacons and
    their preflight, answered as the route and `cors_middleware` answer them."""
    async def post(request: web.BaseRequest) -> web.StreamResponse:
        return await _accept(request, funnel)

    async def preflight(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(status=204, headers=PREFLIGHT_POST_HEADERS)

    return {("POST", PATH): public_cors(post), ("OPTIONS", PATH): preflight}


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
