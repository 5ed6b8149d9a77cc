"""Shared plumbing for the signed-in HTML pages: one layout, a sign-in gate, page data attributes.

Pages are static shells; their scripts (ES modules under /static/js/) call the JSON API with the
session cookie. Values put into templates are HTML-escaped by `views.render`.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from aiohttp import web

from shoplink.keys import WEB_SESSION
from shoplink.web.sessions import WebSession
from shoplink.web.views import TEMPLATES_DIR, page


def signed_in(request: web.Request) -> WebSession:
    """The session, or a redirect to the sign-in page that comes back here afterwards."""
    session: WebSession | None = request.get(WEB_SESSION)
    if session is None:
        raise web.HTTPSeeOther(f"/signin?next={quote(request.path_qs, safe='/?=&')}")
    return session


def static_url(request: web.Request, path: str) -> str:
    """A versioned /static/ URL (the hash changes when the file does, so caches stay correct)."""
    return str(request.app.router["static"].url_for(filename=path))


# The header's links, by role: (path, label, roles that see it; empty: everyone signed in).
NAV: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("/shops", "Shops", frozenset({"seller", "admin"})),
    ("/plans", "Plans", frozenset({"seller", "admin"})),
    ("/studio", "Videos", frozenset({"creator", "seller", "admin"})),
    ("/studio/live", "Live", frozenset({"creator", "seller", "admin"})),
    ("/marketplace", "Marketplace", frozenset({"creator"})),
    ("/me/plans", "My plans", frozenset({"creator"})),
    ("/links", "Links", frozenset({"creator"})),
    ("/sales", "Sales", frozenset({"seller", "admin"})),
    ("/payouts", "Payouts", frozenset({"seller", "admin"})),
    ("/earnings", "Earnings", frozenset({"creator", "seller", "admin", "analyst"})),
    ("/statement", "Statement", frozenset({"creator"})),
    ("/dashboard", "Dashboard", frozenset()),
)


def nav_html(request: web.Request) -> str:
    """The header's links for the signed-in account's roles (the current page marked for AT)."""
    session: WebSession | None = request.get(WEB_SESSION)
    roles = {str(r) for r in session.principal.roles} if session else set()
    links = []
    for path, label, allowed in NAV:
        if allowed and not roles & allowed:
            continue
        current = ' aria-current="page"' if request.path == path else ""
        links.append(f'<a href="{html.escape(path)}"{current}>{html.escape(label)}</a>')
    return "\n    ".join(links)


def shell(request: web.Request, template: str, *, title: str, script: str, **values: str) -> web.Response:
    """The layout around `template`; `{{key}}` values in both are HTML-escaped."""
    body = (TEMPLATES_DIR / template).read_text(encoding="utf-8")
    text = (TEMPLATES_DIR / "layout.html").read_text(encoding="utf-8").replace("{{body}}", body)
    text = text.replace("{{nav}}", nav_html(request))
    values = {"title": title, "css": static_url(request, "app.css"),
              "script": static_url(request, f"js/{script}"), **values}
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", html.escape(value))
    return page(text)


def signed_in_page(name: str, title: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The handler of a page that is only its shell (`{name}.html` + `js/{name}.js`, the script
    calling the API) for any signed-in account; others are sent to sign in."""
    async def view(request: web.Request) -> web.Response:
        signed_in(request)
        return shell(request, f"{name}.html", title=title, script=f"{name}.js")

    return view


def viewer_page(request: web.Request, *, title: str, heading: str, intro: str, attr: str, entity_id: int,
                video_src: str | None, snippet: str, footer: str = "", extra: str = "",
                script: str | None = None, data: dict[str, str] | None = None,
                csp: str | None = None, vendor: tuple[str, ...] = ()) -> web.Response:
    """A public page with a 9:16 video made shoppable by the widget, as a shop would embed it.

    `extra` is trusted HTML put under the intro; `script` a module under /static/js/; `vendor`
    classic scripts (/vendor/ paths) loaded before it; `data` the video element's extra data-*
    attributes; `csp` replaces the default Content-Security-Policy."""
    e = html.escape
    src = f' src="{e(video_src)}"' if video_src else ""
    attrs = "".join(f' data-{e(k)}="{e(v)}"' for k, v in (data or {}).items())
    module = "".join(f'\n<script src="{e(src)}" defer></script>' for src in vendor)
    if script:
        module += f'\n<script type="module" src="{e(static_url(request, f"js/{script}"))}"></script>'
    text = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(title)} · shoplink</title><link rel="stylesheet" href="{e(static_url(request, "app.css"))}">
<script src="/v1/player.js" defer></script>{module}</head>
<body class="viewer"><main class="viewer-main">
<div class="phone"><video id="viewer-video" controls playsinline muted preload="auto"{src}
 {e(attr)}="{entity_id}"{attrs}></video></div>
<div><h1>{e(heading)}</h1><p>{e(intro)}</p>{extra}<p>Add the same to any page, on any site:</p>
<pre tabindex="0" aria-label="Embed code"><code id="embed-snippet">{e(snippet)}</code></pre>
<p class="small">{footer}</p></div>
</main></body></html>"""
    response = page(text)
    if csp is not None:
        response.headers["Content-Security-Policy"] = csp
    return response


def not_found_page(request: web.Request, *, heading: str, message: str) -> web.Response:
    """A real 404 page (HTML, status 404), with somewhere to go next; nothing to retry."""
    e = html.escape
    text = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(heading)} · shoplink</title><link rel="stylesheet" href="{e(static_url(request, "app.css"))}"></head>
<body><main class="card narrow not-found"><p class="muted">404 · not found</p><h1 id="not-found">{e(heading)}</h1>
<p>{e(message)}</p><p><a href="/studio">Your studio</a> · <a href="/demo">The demo</a></p></main></body></html>"""
    return page(text, status=404)
