"""The fast path for public hot routes, at two levels.

In the app: a handler marked with `@fast_route` (`/r/{code}`, the viewer timeline) is called by
`fast_path_middleware` (the app's first middleware) right after routing, skipping the rest of
the chain: request id, CORS, session cookie lookup, bearer auth. Those routes are public and
use none of it, and each layer costs per request (a session cookie sent along would even cost a
database lookup). Errors are rendered exactly as everywhere else (`error_middleware`);
`fast_cors_route` adds the public CORS headers (shoplink.security.cors) to the response and to
its errors. Not added there: `X-Request-Id`.

In the server (`install`, done by `shoplink serve` and the test servers): a request for
`{prefix}{segment}` of a registered prefix (`/r/` → the click), or for an exact method and path
(`POST /v1/events` → the player's beacons, and its CORS preflight), is answered before aiohttp's
application handler runs at all. That handler resolves the route (a URL object, the router's
index and regex, a match-info object) and calls the middleware chain: about 46,000 of the
click's 207,000 instructions and, measured with wrk, a third of its CPU time
(bench/results/clicks.md); `install` wraps the server's request handler
(`shoplink.aiohttp_internals.wrap_request_handler`). Only the plain case is taken there: GET or
HEAD, a segment of `[A-Za-z0-9_-]` (nothing to percent-decode or normalise) and nothing after it
but a query; an exact route takes its path as written (then a query, if any) and only its
method; anything else goes to the app, whose router gives the same answer (or the 404/405).
A request answered there has no match info: `request.app`, `request.match_info` and the app's
response-prepare signals are not available to its handler.

Only mark or register handlers that are public (no principal, no session) and hot; measured in
bench/results/clicks.md and bench/results/videos.md.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from aiohttp import web

from shoplink.aiohttp_internals import RequestHandler, wrap_request_handler
from shoplink.errors import Handler, error_middleware
from shoplink.security.cors import allow_cross_origin, with_cors

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


SegmentHandler = Callable[[web.BaseRequest, str], Awaitable[web.StreamResponse]]
ExactHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]
_SEGMENT = re.compile(r"[A-Za-z0-9_-]{1,128}")
_GET_HEAD = frozenset(("GET", "HEAD"))
_PLAIN_PATH = re.compile(r"(/[A-Za-z0-9_.-]+)+")


def public_cors(handler: ExactHandler) -> ExactHandler:
    """An exact route's handler whose answers, errors included (rendered as `error_middleware`
    renders them), carry the public CORS headers: `fast_cors_route` for the server level."""
    async def call(request: web.BaseRequest) -> web.StreamResponse:
        try:
            response = await handler(request)
        except Exception as exc:
            return await with_cors(request, _rendered(_raising(exc)))  # type: ignore[arg-type]
        if not response.prepared:
            allow_cross_origin(response.headers)
        return response
    return call


def install(server: web.Server, routes: Mapping[str, SegmentHandler],
            exact: Mapping[tuple[str, str], ExactHandler] | None = None) -> None:
    """Answer `GET|HEAD {prefix}{segment}[?query]` with `routes[prefix](request, segment)`, and
    `{method} {path}[?query]` with `exact[(method, path)](request)`, before the application
    handler (see the module docstring). `server`: a runner's, after `setup()` and before the
    first connection (each connection takes the server's handler when it opens). A prefix is
    `/name/`; an exact path has nothing to percent-decode or normalise."""
    for prefix in routes:
        if not (prefix.startswith("/") and prefix.endswith("/") and prefix.count("/") == 2):
            raise ValueError(f"a fast prefix is /name/, not {prefix!r}")
    for _, path in exact or ():
        if not (path.startswith("/") and _PLAIN_PATH.fullmatch(path)):
            raise ValueError(f"a fast exact path is plain (/a/b, no query), not {path!r}")
        if path[:path.find("/", 1) + 1] in routes:
            raise ValueError(f"a fast exact path under a fast prefix is never reached: {path!r}")
    table = dict(routes)
    exact_table = dict(exact or {})

    def wrap(app_handler: RequestHandler) -> RequestHandler:
        async def dispatch(request: web.BaseRequest) -> web.StreamResponse:
            path = request.raw_path
            end = path.find("/", 1) + 1
            handler = table.get(path[:end]) if end else None
            if handler is not None:  # a prefix route (the click: looked up first)
                if request.method in _GET_HEAD:
                    query = path.find("?", end)
                    segment = path[end:] if query < 0 else path[end:query]
                    if _SEGMENT.fullmatch(segment):
                        try:
                            return await handler(request, segment)
                        except Exception as exc:  # rendered as error_middleware renders every error
                            return await error_middleware(request, _raising(exc))  # type: ignore[arg-type]
            elif exact_table:
                query = path.find("?")
                whole = exact_table.get((request.method, path if query < 0 else path[:query]))
                if whole is not None:
                    try:
                        return await whole(request)
                    except Exception as exc:  # rendered as error_middleware renders every error
                        return await error_middleware(request, _raising(exc))  # type: ignore[arg-type]
            return await app_handler(request)
        return dispatch

    wrap_request_handler(server, wrap)
