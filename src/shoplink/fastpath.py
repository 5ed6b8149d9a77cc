"""The fast path for public hot routes: one mechanism, used by `/r/{code}` and the viewer timeline.

A handler marked with `@fast_route` is called by `fast_path_middleware` (the app's first
middleware) right after routing, skipping the rest of the chain: request id, session cookie
lookup, bearer auth. Those routes are public and use none of it, and each layer costs per request
(a session cookie sent along would even cost a database lookup). Errors are rendered exactly as
everywhere else (`error_middleware`); the CORS header of public `/v1/` responses still comes from
the `on_response_prepare` signal (web/player.py). Not added there: `X-Request-Id`.

Only mark handlers that are public (no principal, no session) and hot; measured in
bench/results/clicks.md and bench/results/videos.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from shoplink.errors import Handler, error_middleware

H = TypeVar("H", bound=Callable[[web.Request], Awaitable[web.StreamResponse]])

_FAST: set[Callable[..., object]] = set()


def fast_route(handler: H) -> H:
    """Mark a public route handler for the fast path (decorate below the route decorator)."""
    _FAST.add(handler)
    return handler


@web.middleware
async def fast_path_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    route_handler = request.match_info.handler
    if route_handler in _FAST:
        return await error_middleware(request, route_handler)
    return await handler(request)
