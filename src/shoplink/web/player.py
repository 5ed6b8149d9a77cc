"""The embeddable player widget (`/v1/player.js`) and the public live viewer page.

Shops include the script from our origin on their own pages, so every public `/v1/` response
(anchor timelines, live state and its event stream, the script itself) allows any origin to read
it: see shoplink/security/cors.py for where those headers are added.
"""

from __future__ import annotations

import hashlib

from aiohttp import web

from shoplink.http import path_id
from shoplink.keys import SETTINGS
from shoplink.web.pages import viewer_page
from shoplink.web.views import STATIC_DIR

routes = web.RouteTableDef()
# The player's events (player_events.js) first: the widget finds its hooks when it starts.
_SCRIPT = (STATIC_DIR / "player_events.js").read_bytes() + b"\n" + (STATIC_DIR / "player.js").read_bytes()
_ETAG = '"' + hashlib.sha256(_SCRIPT).hexdigest()[:16] + '"'


@routes.get("/v1/player.js")
async def player_script(request: web.Request) -> web.Response:
    headers = {"ETag": _ETAG, "Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"}
    if request.headers.get("If-None-Match") == _ETAG:
        return web.Response(status=304, headers=headers)
    return web.Response(body=_SCRIPT, content_type="text/javascript", charset="utf-8", headers=headers)


@routes.get("/watch/live/{live_id}")
async def watch_live(request: web.Request) -> web.Response:
    """A public viewer page for a live session: the pinned products appear as the host pins them."""
    live_id = path_id(request, "live_id")
    base = request.app[SETTINGS].public_base_url
    snippet = (f'<script src="{base}/v1/player.js" defer></script>\n'
               f'<video src="(your stream)" controls playsinline data-shoplink-live="{live_id}"></video>')
    return viewer_page(request, title=f"Live {live_id}", heading="Live shopping",
                       intro="Products the host pins show up on the video at once.",
                       attr="data-shoplink-live", entity_id=live_id, video_src=None, snippet=snippet)


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
