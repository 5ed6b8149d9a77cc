"""GET /r/{code}: the viewer's click. Public, never cached by proxies, never an open redirect:
the Location comes only from the resolver's cached target (see resolver.py)."""

from __future__ import annotations

from aiohttp import web

from shoplink.keys import CLICKS

routes = web.RouteTableDef()


@routes.get("/r/{code}")  # also answers HEAD (same redirect, not counted)
async def click(request: web.Request) -> web.Response:
    service = request.app[CLICKS]
    code = request.match_info["code"]
    target = service.resolver.get(code) or await service.resolver.resolve(code)
    return service.answer(request, target)


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
