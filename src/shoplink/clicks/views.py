"""GET /r/{code}: the viewer's click. Public, never cached by proxies, never an open redirect:
the Location comes only from the resolver's cached target (see resolver.py).

`click_fast_path` is the app's first middleware: for a request the router matched to this view
it calls the view directly, skipping the rest of the middleware chain (request id, error
rendering, bearer auth, which /r/ does not use), because each layer costs per click; it renders
the view's own errors itself. Measured: with the chain, a fixed 302 inside the app already
reaches only ~0.7x of a bare aiohttp handler (bench/results/clicks.md).
"""

from __future__ import annotations

import logging

from aiohttp import web

from shoplink.errors import DomainError, Handler, json_error
from shoplink.keys import CLICKS, REQUEST_ID

log = logging.getLogger(__name__)

routes = web.RouteTableDef()


@routes.get("/r/{code}")  # also answers HEAD (same redirect, not counted)
async def click(request: web.Request) -> web.Response:
    service = request.app[CLICKS]
    code = request.match_info["code"]
    target = service.resolver.get(code) or await service.resolver.resolve(code)
    return service.answer(request, target)


@web.middleware
async def click_fast_path(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.match_info.handler is not click:
        return await handler(request)
    try:
        return await click(request)
    except DomainError as exc:  # e.g. 503 when the code is not cached and PostgreSQL is down
        return json_error(exc.status, exc.code, exc.message, exc.details)
    except Exception:
        log.exception("click failed", extra={"path": request.path, "request_id": request.get(REQUEST_ID)})
        return json_error(500, "internal_error", "internal server error")


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
