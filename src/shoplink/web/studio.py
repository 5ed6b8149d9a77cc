"""Creator studio pages: the video list with upload, and one video's timeline editor."""

from __future__ import annotations

from aiohttp import web

from shoplink.web.pages import shell, signed_in

routes = web.RouteTableDef()


@routes.get("/studio")
async def studio(request: web.Request) -> web.Response:
    signed_in(request)
    return shell(request, "studio.html", title="Videos", script="studio.js")


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
