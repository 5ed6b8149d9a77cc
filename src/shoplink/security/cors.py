"""CORS for the public viewer API: every public `/v1/` response (anchor timelines, live state
and its event stream, the player script) and the video thumbnails may be read by any origin,
because shops embed the player on their own pages. Never with credentials: these endpoints are
public and cookie-free. Nothing else gets CORS headers (not the management API, not `/r/`).

Where it is applied, so that no other request pays for it:
- `cors_middleware` (in the app's chain) for public paths, including their error responses, and
  the preflight (OPTIONS) of their GET routes, sent by a browser when a cross-origin request
  carries a non-simple header such as `Last-Event-ID` (live event streams) or `If-None-Match`;
- the fast path (`shoplink.fastpath`) for handlers marked `fast_cors_route`;
- handlers that prepare a streamed response themselves call `allow_cross_origin` first.
There is no response-prepare signal: aiohttp would run it for every response, `/r/` included.
`/api/v1/` and the pages stay same-origin: no preflight passes there (405, no CORS headers).
"""

from __future__ import annotations

from collections.abc import MutableMapping

from aiohttp import web

from shoplink.errors import Handler

PUBLIC_PREFIXES = ("/v1/", "/media/thumbnails/")
_METHODS = frozenset({"GET", "HEAD"})
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD",
    "Access-Control-Allow-Headers": "Accept, Cache-Control, If-None-Match, Last-Event-ID",
    "Access-Control-Max-Age": "86400",
}
# POST /v1/events (the player's beacons): sendBeacon sends text/plain without a preflight; a
# fetch fallback with Content-Type: application/json asks first.
PREFLIGHT_POST_HEADERS = {**PREFLIGHT_HEADERS, "Access-Control-Allow-Methods": "POST",
                          "Access-Control-Allow-Headers": "Content-Type"}


# What every public response carries (and each error of a public path).
CROSS_ORIGIN_HEADERS = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "ETag"}


def allow_cross_origin(headers: MutableMapping[str, str]) -> None:
    for name, value in CROSS_ORIGIN_HEADERS.items():
        headers.setdefault(name, value)


def _public_path(request: web.BaseRequest) -> bool:
    # path_safe: what the router matched on, already computed (request.path would unquote again)
    return request.rel_url.path_safe.startswith(PUBLIC_PREFIXES)


def is_public(request: web.BaseRequest) -> bool:
    return request.method in _METHODS and _public_path(request)


async def with_cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """`handler`'s response (or the HTTP exception it raises) with the CORS headers."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        allow_cross_origin(exc.headers)
        raise
    if not response.prepared:
        allow_cross_origin(response.headers)
    return response


def _preflight(request: web.Request) -> web.Response | None:
    """204 for an OPTIONS on a public path whose route answers GET; None otherwise."""
    if request.method != "OPTIONS" or not _public_path(request):
        return None
    refused = request.match_info.http_exception
    if isinstance(refused, web.HTTPMethodNotAllowed) and "GET" in refused.allowed_methods:
        return web.Response(status=204, headers=PREFLIGHT_HEADERS)
    if isinstance(refused, web.HTTPMethodNotAllowed) and "POST" in refused.allowed_methods:
        return web.Response(status=204, headers=PREFLIGHT_POST_HEADERS)
    return None


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outside `error_middleware`, so that the JSON errors of public paths carry CORS too."""
    if is_public(request):
        return await with_cors(request, handler)
    preflight = _preflight(request)
    if preflight is not None:
        return preflight
    return await handler(request)
