"""Analytics dashboard pages (charts drawn in the browser with Chart.js from web/node_modules)."""

from __future__ import annotations

from aiohttp import web

from shoplink.http import path_id
from shoplink.paths import PROJECT_DIR
from shoplink.web.pages import shell, signed_in

routes = web.RouteTableDef()
# `npm ci` in web/ (scripts/lib/env.sh does it) installs the UMD build served under /vendor/chart.js/.
CHART_JS_DIR = PROJECT_DIR / "web" / "node_modules" / "chart.js" / "dist"
# axe-core (accessibility rules) from the same npm install: the browser tests inject it into every page.
AXE_DIR = PROJECT_DIR / "web" / "node_modules" / "axe-core"
KINDS = {"videos": "Video", "live": "Live session", "products": "Product", "shops": "Shop",
         "creators": "Creator", "plans": "Plan", "anchors": "Anchor"}


@routes.get("/dashboard")
async def dashboard_index(request: web.Request) -> web.Response:
    signed_in(request)
    return shell(request, "dashboard_index.html", title="Dashboard", script="dashboard_index.js")


@routes.get("/dashboard/{kind}/{entity_id}")
async def dashboard(request: web.Request) -> web.Response:
    kind = request.match_info["kind"]  # a malformed URL is a 404 / 400, signed in or not
    if kind not in KINDS:
        raise web.HTTPNotFound(text="no such dashboard")
    entity_id = path_id(request, "entity_id")
    signed_in(request)
    heading = f"{KINDS[kind]} {entity_id}"
    return shell(request, "dashboard.html", title=heading, script="dashboard.js", kind=kind,
                 entity_id=str(entity_id), heading=heading)


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
    if CHART_JS_DIR.is_dir():
        app.router.add_static("/vendor/chart.js/", CHART_JS_DIR, name="vendor-chartjs")
    if (AXE_DIR / "axe.min.js").is_file():
        app.router.add_static("/vendor/axe-core/", AXE_DIR, name="vendor-axe")
