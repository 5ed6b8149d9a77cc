"""CORS for the public viewer API: every public `/v1/` response (anchor timelines, live state
and its event stream, the player script) and the video thumbnails may be read by any origin,
because shops embed the player on their own pages. Never with credentials: these endpoints are
public and cookie-free. Nothing else gets CORS headers (not the management API, not `/r/`).

Where it is applied, so that no other request pays for it:
- `cors_middleware` (in the app's chain) for public paths, including their error responses;
- the fast path (`shoplink.fastpath`) for handlers marked `fast_cors_route`;
- handlers that prepare a streamed response themselves call `allow_cross_origin` first.
There is no response-prepare signal: aiohttp would run it for every response, `/r/` included.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from aiohttp import web

from shoplink.errors import Handler

PUBLIC_PREFIXES = ("/v1/", "/media/thumbnails/")
_METHODS = frozenset({"GET", "HEAD"})


def allow_cross_origin(headers: MutableMapping[str, str]) -> None:
    headers.setdefault("Access-Control-Allow-Origin", "*")
    headers.setdefault("Access-Control-Expose-Headers", "ETag")


def is_public(request: web.BaseRequest) -> bool:
    # path_safe: what the router matched on, already computed (request.path would unquote again)
    return request.method in _METHODS and request.rel_url.path_safe.startswith(PUBLIC_PREFIXES)


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


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outside `error_middleware`, so that the JSON errors of public paths carry CORS too."""
    if is_public(request):
        return await with_cors(request, handler)
    return await handler(request)
