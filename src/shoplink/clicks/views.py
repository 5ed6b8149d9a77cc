"""GET /r/{code}: the viewer's click. Public, never cached by proxies, never an open redirect:
the Location comes only from the resolver's cached target (see resolver.py).

In `shoplink serve` a plain `/r/{code}` is answered by the server's fast dispatch
(`shoplink.fastpath.install`, set up by `app.install_fast_dispatch`) without routing or
middleware; this route serves the rest (percent-encoded codes, servers without the dispatch),
itself on the app's fast path: called right after routing, skipping the middleware chain.
Measured in bench/results/clicks.md.
"""

from __future__ import annotations

from aiohttp import web

from shoplink.fastpath import fast_route
from shoplink.keys import CLICKS

routes = web.RouteTableDef()


@routes.get("/r/{code}")  # also answers HEAD (same redirect, not counted)
@fast_route
async def click(request: web.Request) -> web.StreamResponse:
    return await request.app[CLICKS].click(request, request.match_info["code"])


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
