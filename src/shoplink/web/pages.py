"""Shared plumbing for the signed-in HTML pages: one layout, a sign-in gate, page data attributes.

Pages are static shells; their scripts (ES modules under /static/js/) call the JSON API with the
session cookie. Values put into templates are HTML-escaped by `views.render`.
"""

from __future__ import annotations

import html
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


def shell(request: web.Request, template: str, *, title: str, script: str, **values: str) -> web.Response:
    """The layout around `template`; `{{key}}` values in both are HTML-escaped."""
    body = (TEMPLATES_DIR / template).read_text(encoding="utf-8")
    text = (TEMPLATES_DIR / "layout.html").read_text(encoding="utf-8").replace("{{body}}", body)
    values = {"title": title, "css": static_url(request, "app.css"),
              "script": static_url(request, f"js/{script}"), **values}
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", html.escape(value))
    return page(text)
