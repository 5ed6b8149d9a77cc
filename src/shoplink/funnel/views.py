"""HTTP: POST /v1/events (the player's beacons, from any origin)."""

from __future__ import annotations

from aiohttp import web

from shoplink.errors import PayloadTooLarge
from shoplink.fastpath import fast_cors_route
from shoplink.funnel.models import MAX_BODY_BYTES
from shoplink.funnel.validate import events_of
from shoplink.keys import FUNNEL

routes = web.RouteTableDef()
_NO_CONTENT = {"Cache-Control": "no-store"}


async def _body(request: web.Request) -> bytes:
    """The body, refused (413) beyond MAX_BODY_BYTES before more than that is read."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"at most {MAX_BODY_BYTES} bytes of events per request", code="payload_too_large")
    body = await request.content.read(MAX_BODY_BYTES + 1)
    if len(body) > MAX_BODY_BYTES or not request.content.at_eof():
        more = await request.content.read(1) if len(body) <= MAX_BODY_BYTES else b"x"
        if more:
            raise PayloadTooLarge(f"at most {MAX_BODY_BYTES} bytes of events per request",
                                  code="payload_too_large")
    return body


@routes.post("/v1/events")
@fast_cors_route  # public and hot: skips the middleware chain (shoplink/fastpath.py)
async def post_events(request: web.Request) -> web.Response:
    """navigator.sendBeacon / fetch keepalive from the player: 204 once queued (never waits on Redis)."""
    beacon = events_of(await _body(request))
    headers = request.headers
    await request.app[FUNNEL].accept(beacon, user_agent=headers.get("User-Agent", ""),
                                     cookie_header=headers.get("Cookie"), remote=request.remote,
                                     referer=headers.get("Referer"))
    return web.Response(status=204, headers=_NO_CONTENT)


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
