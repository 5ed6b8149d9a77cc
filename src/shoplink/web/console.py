"""Live host pages: the host's live sessions, and the console of one (start/end, pins, numbers)."""

from __future__ import annotations

from aiohttp import web

from shoplink.errors import NotFound
from shoplink.http import path_id
from shoplink.keys import LIVE
from shoplink.web.pages import not_found_page, shell, signed_in

routes = web.RouteTableDef()


@routes.get("/studio/live")
async def live_list(request: web.Request) -> web.Response:
    signed_in(request)
    return shell(request, "live_list.html", title="Live sessions", script="live_list.js")


@routes.get("/studio/live/{live_id}")
async def console(request: web.Request) -> web.Response:
    live_id = path_id(request, "live_id")  # a malformed URL is a 400, signed in or not
    session = signed_in(request)
    try:  # another account's live is a 404 page, like a missing one
        await request.app[LIVE].get(session.principal, live_id)
    except NotFound:
        return not_found_page(request, heading="No such live session",
                              message="There is no live session with this number among yours.")
    return shell(request, "console.html", title=f"Live {live_id}", script="console.js", live_id=str(live_id))


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
