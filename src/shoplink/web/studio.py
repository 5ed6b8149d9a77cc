"""Creator studio pages: the video list with upload, and one video's timeline editor."""

from __future__ import annotations

from aiohttp import web

from shoplink.errors import NotFound
from shoplink.http import path_id, principal
from shoplink.keys import VIDEOS
from shoplink.web.pages import not_found_page, shell, signed_in

routes = web.RouteTableDef()


@routes.get("/studio")
async def studio(request: web.Request) -> web.Response:
    signed_in(request)
    return shell(request, "studio.html", title="Videos", script="studio.js")


@routes.get("/studio/videos/{video_id}")
async def studio_video(request: web.Request) -> web.Response:
    video_id = path_id(request, "video_id")  # a malformed URL is a 400, signed in or not
    session = signed_in(request)
    try:  # another account's video is a 404 page, like a missing one (existence must not leak)
        await request.app[VIDEOS].get(session.principal, video_id)
    except NotFound:
        return not_found_page(request, heading="No such video",
                              message="There is no video with this number among yours.")
    return shell(request, "studio_video.html", title=f"Video {video_id}", script="studio_video.js",
                 video_id=str(video_id), media_url=f"/studio/videos/{video_id}/media")


@routes.get("/studio/videos/{video_id}/media")
async def studio_video_media(request: web.Request) -> web.StreamResponse:
    """The owner's video file for the editor's player (range requests, so it can seek)."""
    video = await request.app[VIDEOS].get(principal(request), path_id(request, "video_id"))
    return web.FileResponse(video.file_path, headers={"Cache-Control": "private, max-age=3600"})


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
