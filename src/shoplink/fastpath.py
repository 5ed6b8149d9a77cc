"""The fast path for public hot routes: one mechanism, used by `/r/{code}` and the viewer timeline.

A handler marked with `@fast_route` is called by `fast_path_middleware` (the app's first
middleware) right after routing, skipping the rest of the chain: request id, CORS, session
cookie lookup, bearer auth. Those routes are public and use none of it, and each layer costs per
request (a session cookie sent along would even cost a database lookup). Errors are rendered
exactly as everywhere else (`error_middleware`); `fast_cors_route` adds the public CORS
headers (shoplink.security.cors) to the response and to its errors. Not added there: `X-Request-Id`.

Only mark handlers that are public (no principal, no session) and hot; measured in
bench/results/clicks.md and bench/results/videos.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from shoplink.errors import Handler, error_middleware
from shoplink.security.cors import with_cors

H = TypeVar("H", bound=Callable[[web.Request], Awaitable[web.StreamResponse]])

# Fast-path handlers -> whether their responses carry the public CORS headers.
_FAST: dict[Callable[..., object], bool] = {}


def fast_route(handler: H) -> H:
    """Mark a public route handler for the fast path (decorate below the route decorator)."""
    _FAST[handler] = False
    return handler


def fast_cors_route(handler: H) -> H:
    """`fast_route` for a public viewer endpoint: its responses carry the CORS headers."""
    _FAST[handler] = True
    return handler


def _rendered(route_handler: Handler) -> Handler:
    async def call(request: web.Request) -> web.StreamResponse:
        return await error_middleware(request, route_handler)
    return call


def _raising(exc: Exception) -> Handler:
    async def call(request: web.Request) -> web.StreamResponse:
        raise exc
    return call


@web.middleware
async def fast_path_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    route_handler = request.match_info.handler
    cors = _FAST.get(route_handler)
    if cors is None:
        return await handler(request)
    if cors:
        return await with_cors(request, _rendered(route_handler))
    try:  # error_middleware inlined: one coroutine less per click; errors rendered by it all the same
        return await route_handler(request)
    except Exception as exc:
        return await error_middleware(request, _raising(exc))
