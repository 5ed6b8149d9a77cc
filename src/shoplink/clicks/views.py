"""GET /r/{code}: the viewer's click. Public, never cached by proxies, never an open redirect:
the Location comes only from the resolver's cached target (see resolver.py).

The view is on the app's fast path (`shoplink.fastpath`): called right after routing, skipping
the middleware chain (request id, session, bearer auth, which /r/ does not use), because each
layer costs per click. Measured: with the chain, a fixed 302 inside the app already reaches only
~0.7x of a bare aiohttp handler (bench/results/clicks.md).
"""

from __future__ import annotations

from aiohttp import web

from shoplink.fastpath import fast_route
from shoplink.keys import CLICKS

routes = web.RouteTableDef()


@routes.get("/r/{code}")  # also answers HEAD (same redirect, not counted)
@fast_route
async def click(request: web.Request) -> web.StreamResponse:
    service = request.app[CLICKS]
    code = request.match_info["code"]
    target = service.resolver.get(code) or await service.resolver.resolve(code)
    return service.answer(request, target)


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
