"""The embeddable player widget (`/v1/player.js`) and the public live viewer page.

Shops include the script from our origin on their own pages, so every public `/v1/` response
(anchor timelines, live state and its event stream, the script itself) allows any origin to read
it: see shoplink/security/cors.py for where those headers are added.
"""

from __future__ import annotations

import hashlib

from aiohttp import web

from shoplink.errors import NotFound
from shoplink.http import path_id
from shoplink.keys import LIVE, SETTINGS, VIDEOS
from shoplink.live.models import ENDED, LiveState
from shoplink.paths import PROJECT_DIR
from shoplink.security.headers import CONTENT_SECURITY_POLICY
from shoplink.videos.models import Video
from shoplink.web.pages import not_found_page, viewer_page
from shoplink.web.views import STATIC_DIR

routes = web.RouteTableDef()
# `npm ci` in web/ installs hls.js (web/package.json); the watch page loads it from /vendor/hls.js/.
HLS_JS_DIR = PROJECT_DIR / "web" / "node_modules" / "hls.js" / "dist"
HLS_JS_URL = "/vendor/hls.js/hls.min.js"
# The player's events (player_events.js) first: the widget finds its hooks when it starts.
_SCRIPT = (STATIC_DIR / "player_events.js").read_bytes() + b"\n" + (STATIC_DIR / "player.js").read_bytes()
_ETAG = '"' + hashlib.sha256(_SCRIPT).hexdigest()[:16] + '"'


@routes.get("/v1/player.js")
async def player_script(request: web.Request) -> web.Response:
    headers = {"ETag": _ETAG, "Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"}
    if request.headers.get("If-None-Match") == _ETAG:
        return web.Response(status=304, headers=headers)
    return web.Response(body=_SCRIPT, content_type="text/javascript", charset="utf-8", headers=headers)


def _missing_live(request: web.Request) -> web.Response:
    return not_found_page(request, heading="No such live",
                          message="This live session does not exist, or it was removed. Check the link you were given.")


@routes.get("/watch/live/{live_id}")
async def watch_live(request: web.Request) -> web.Response:
    """A public viewer page for a live session: the pinned products appear as the host pins them;
    once it has ended, the replay is offered (when the host attached one)."""
    live_id = path_id(request, "live_id")
    try:
        state = await request.app[LIVE].public_state(live_id)
    except NotFound:
        return _missing_live(request)
    base = request.app[SETTINGS].public_base_url
    snippet = (f'<script src="{base}/v1/player.js" defer></script>\n'
               f'<video src="(your stream)" controls playsinline data-shoplink-live="{live_id}"></video>')
    extra = ""
    if state.status == ENDED:
        extra = ('<p class="replay-offer" id="replay-offer">This live has ended. '
                 + (f'<a class="button-link" href="/watch/live/{live_id}/replay">Watch the replay</a>'
                    if state.replay_video_id is not None else "The replay shows here once the host publishes it.")
                 + "</p>")
    extra += '<p class="small muted" id="stream-status" aria-live="polite"></p>'
    stream = "" if state.status == ENDED else state.stream_url or ""  # an ended live's stream is over
    return viewer_page(request, title=state.title, heading=state.title,
                       intro="Live shopping: products the host pins show up on the video at once.",
                       attr="data-shoplink-live", entity_id=live_id, video_src=None, snippet=snippet,
                       extra=extra, script="watch_live.js", data={"stream-url": stream},
                       vendor=(HLS_JS_URL,) if HLS_JS_DIR.is_dir() else (),
                       csp=watch_csp(request.app[SETTINGS].allow_http_urls))


def watch_csp(allow_http: bool) -> str:
    """The pages' CSP, but media and fetches may reach the host's stream, wherever the host set it
    (validated https, or http in development); scripts stay our own."""
    extra = " https:" + (" http:" if allow_http else "")
    out = []
    for directive in CONTENT_SECURITY_POLICY.split("; "):
        if directive.startswith(("media-src ", "connect-src ")):
            directive += extra
        out.append(directive)
    return "; ".join(out)


async def _replay(request: web.Request) -> tuple[LiveState, Video] | None:
    try:
        state = await request.app[LIVE].public_state(path_id(request, "live_id"))
    except NotFound:
        return None
    if state.status != ENDED or state.replay_video_id is None:
        return None
    video = await request.app[VIDEOS].public(state.replay_video_id)
    return None if video is None or not video.active else (state, video)


@routes.get("/watch/live/{live_id}/replay")
async def watch_replay(request: web.Request) -> web.Response:
    """The recording the host attached to an ended live, with its replay anchors (public, like the live)."""
    found = await _replay(request)
    if found is None:
        return not_found_page(request, heading="No replay",
                              message="This live has no replay (yet): the host publishes it after the live ends.")
    state, video = found
    base = request.app[SETTINGS].public_base_url
    snippet = (f'<script src="{base}/v1/player.js" defer></script>\n'
               f'<video src="your-recording.webm" controls playsinline data-shoplink-video="{video.id}"></video>')
    return viewer_page(request, title=f"{state.title} (replay)", heading=f"{state.title}: the replay",
                       intro="The live's products show up again at the moments the host pinned them.",
                       attr="data-shoplink-video", entity_id=video.id,
                       video_src=f"/watch/live/{state.session_id}/replay/media", snippet=snippet)


@routes.get("/watch/live/{live_id}/replay/media")
async def replay_media(request: web.Request) -> web.StreamResponse:
    """The replay's file: public once attached to an ended live (other videos stay private)."""
    found = await _replay(request)
    if found is None:
        raise web.HTTPNotFound()
    return web.FileResponse(found[1].file_path, headers={"Cache-Control": "public, max-age=300"})


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
    if HLS_JS_DIR.is_dir():
        app.router.add_static("/vendor/hls.js/", HLS_JS_DIR, name="vendor-hlsjs")
