"""The demo page (`/demo`): the seeded demo video playing with product cards from the widget.

`shoplink demo` (demo.py) generates a short vertical clip, uploads it as the demo seller and
anchors one demo product per scene; the page plays it and every card leads, through the real
redirect, to the demo shop's product page that shows the attribution it received.
"""

from __future__ import annotations

from aiohttp import web

from shoplink.auth.models import Principal, Role
from shoplink.keys import AUTH, SETTINGS, VIDEOS
from shoplink.videos.models import Video
from shoplink.web.demo_content import DEMO_SELLER, DEMO_VIDEO_TITLE
from shoplink.web.pages import not_found_page, viewer_page

routes = web.RouteTableDef()


async def demo_video(app: web.Application) -> Video | None:
    """The demo seller's latest demo video (None until `shoplink demo` made one)."""
    seller = await app[AUTH].find_account_by_name(DEMO_SELLER)
    if seller is None:
        return None
    who = Principal(seller.id, seller.name, frozenset({Role.SELLER}))
    videos = [v for v in await app[VIDEOS].list_videos(who, 200, 0) if v.title == DEMO_VIDEO_TITLE]
    return videos[-1] if videos else None


@routes.get("/demo")
async def demo(request: web.Request) -> web.Response:
    video = await demo_video(request.app)
    base = request.app[SETTINGS].public_base_url
    if video is None:
        return not_found_page(request, heading="No demo yet",
                              message="No demo video yet: run `shoplink demo` (scripts/serve does) and reload.")
    snippet = (f'<script src="{base}/v1/player.js" defer></script>\n'
               f'<video src="your-video.webm" controls playsinline data-shoplink-video="{video.id}"></video>')
    return viewer_page(
        request, title="Demo", heading="Shoppable video demo",
        intro="Play the video (or drag its slider): a product card shows while its product is on screen. "
              "Click a card to go, through the tracked redirect, to the demo shop's product page.",
        attr="data-shoplink-video", entity_id=video.id, video_src=f"/demo/video/{video.id}", snippet=snippet,
        footer='Sign in at <a href="/signin">/signin</a> with the demo tokens `shoplink demo` printed to '
               'edit the timeline in the studio and see the clicks in the dashboard.')


@routes.get("/demo/video/{video_id}")
async def demo_video_file(request: web.Request) -> web.StreamResponse:
    """Only the demo video is public here (other videos are served to their owners only)."""
    video = await demo_video(request.app)
    if video is None or str(video.id) != request.match_info["video_id"]:
        raise web.HTTPNotFound()
    return web.FileResponse(video.file_path, headers={"Cache-Control": "public, max-age=3600"})


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
