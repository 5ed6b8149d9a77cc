"""CORS preflight for the public viewer endpoints and the player script.

The simple responses' `Access-Control-Allow-Origin: *` comes from web/player.py (public `/v1/`
and thumbnail routes only). A browser asks first (OPTIONS) when a cross-origin request carries
a non-simple header such as `Last-Event-ID` (live event streams) or `If-None-Match`; that
preflight is answered here, for GET routes under the public prefixes only. `/api/v1/` and the
pages stay same-origin: no preflight passes there (405, no CORS headers), and `/r/{code}` is a
plain navigation that never needs CORS. Only OPTIONS requests do any work here.
"""

from __future__ import annotations

from aiohttp import web

from shoplink.errors import Handler
from shoplink.web.player import PUBLIC_PREFIXES

PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD",
    "Access-Control-Allow-Headers": "Accept, Cache-Control, If-None-Match, Last-Event-ID",
    "Access-Control-Max-Age": "86400",
}


@web.middleware
async def cors_preflight_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method == "OPTIONS" and request.rel_url.path_safe.startswith(PUBLIC_PREFIXES):
        refused = request.match_info.http_exception
        if isinstance(refused, web.HTTPMethodNotAllowed) and "GET" in refused.allowed_methods:
            return web.Response(status=204, headers=PREFLIGHT_HEADERS)
    return await handler(request)
