"""The home page at `/`: what shoplink is, sign in, the demo (and, signed in, where to go next)."""

from __future__ import annotations

import html

from aiohttp import web

from shoplink.keys import WEB_SESSION
from shoplink.web.pages import static_url
from shoplink.web.sessions import WebSession
from shoplink.web.views import STATIC_DIR, TEMPLATES_DIR, page

routes = web.RouteTableDef()

# Where a signed-in account starts, by role: (path, what it is for).
START: dict[str, tuple[tuple[str, str], ...]] = {
    "seller": (("/shops", "Your shops, domains and products"),
               ("/plans", "Promotion plans: what creators earn for selling your products")),
    "creator": (("/marketplace", "Find plans to join"), ("/studio", "Your videos and their shoppable links"),
                ("/earnings", "What your links earned")),
    "admin": (("/shops", "Shops"), ("/dashboard", "Dashboard")),
    "analyst": (("/dashboard", "Dashboard"), ("/earnings", "Reports")),
}


def _next_steps(session: WebSession | None) -> str:
    if session is None:
        return ('<p><a class="button-link primary" id="home-signin" href="/signin?next=/dashboard">'
                'Sign in</a> with the API token your operator gave you '
                '(locally, <code>scripts/serve</code> prints the demo accounts\' tokens).</p>')
    who = session.principal
    seen: set[str] = set()
    items = []
    for role in sorted(str(r) for r in who.roles):
        for path, text in START.get(role, ()):
            if path not in seen:
                seen.add(path)
                items.append(f'<li><a href="{html.escape(path)}">{html.escape(text)}</a></li>')
    items.append('<li><a href="/dashboard">Dashboard: clicks and sales of everything you own</a></li>')
    return (f'<p id="home-who">Signed in as <strong>{html.escape(who.name)}</strong>.</p>'
            f'<ul class="next-steps">{"".join(items)}</ul>')


@routes.get("/")
async def home(request: web.Request) -> web.Response:
    text = (TEMPLATES_DIR / "home.html").read_text(encoding="utf-8")
    text = text.replace("{{css}}", html.escape(static_url(request, "app.css")))
    text = text.replace("{{next_steps}}", _next_steps(request.get(WEB_SESSION)))
    return page(text)


@routes.get("/favicon.ico")
async def favicon(request: web.Request) -> web.FileResponse:
    """The icon browsers ask every site for (an SVG; without it each page logs a 404)."""
    return web.FileResponse(STATIC_DIR / "favicon.svg", headers={
        "Content-Type": "image/svg+xml", "Cache-Control": "public, max-age=86400"})


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
