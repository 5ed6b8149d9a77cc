"""Cookie sessions for the web pages, with CSRF protection on state-changing requests."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from shoplink.errors import Forbidden, Handler
from shoplink.keys import PRINCIPAL, SESSIONS, SETTINGS, WEB_SESSION
from shoplink.web.sessions import COOKIE_NAME, SAFE_METHODS, csrf_ok


def same_origin(request: web.Request) -> bool:
    """False only when the browser says the request comes from another origin."""
    origin = request.headers.get("Origin")
    if origin is None or (origin == "null" and request.method in SAFE_METHODS):
        return True
    ours = urlsplit(request.app[SETTINGS].public_base_url)
    theirs = urlsplit(origin)
    request_host = request.host
    return (theirs.scheme, theirs.netloc) in {(ours.scheme, ours.netloc), (request.scheme, request_host)}


# Public resources never act for a signed-in user: no session lookup there, so a PostgreSQL
# outage (or a slow lookup) cannot reach the player script, viewer API, thumbnails or assets.
_SESSIONLESS = ("/v1/", "/media/thumbnails/", "/static/", "/vendor/", "/healthz", "/readyz", "/favicon.ico")


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.rel_url.path_safe.startswith(_SESSIONLESS):
        return await handler(request)
    cookie = request.cookies.get(COOKIE_NAME)
    # A bearer token wins: API clients never depend on cookies (and are not subject to CSRF).
    if cookie and "Authorization" not in request.headers:
        session = await request.app[SESSIONS].find(cookie)
        if session is not None:
            if request.method not in SAFE_METHODS and (
                    not same_origin(request) or not csrf_ok(session, request.headers.get("X-CSRF-Token"))):
                raise Forbidden("missing or wrong X-CSRF-Token for a cookie-authenticated request",
                                code="csrf_failed")
            request[PRINCIPAL] = session.principal
            request[WEB_SESSION] = session
    return await handler(request)
