"""Sign-in and sign-out pages, and the session endpoint the pages' scripts use."""

from __future__ import annotations

import html

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from shoplink.errors import BadRequest, Forbidden, Unauthorized
from shoplink.http import json_response
from shoplink.keys import RATE_LIMITS, SESSIONS, SETTINGS, WEB_SESSION
from shoplink.paths import PACKAGE_DIR
from shoplink.security.headers import PAGE_HEADERS
from shoplink.security.middleware import too_many
from shoplink.web.middleware import same_origin
from shoplink.web.sessions import COOKIE_NAME, SESSION_TTL

routes = web.RouteTableDef()
STATIC_DIR = PACKAGE_DIR / "web" / "static"
TEMPLATES_DIR = PACKAGE_DIR / "web" / "templates"
HOME = "/studio"


def render(name: str, **values: str) -> str:
    """Tiny templating: `{{key}}` placeholders, values HTML-escaped."""
    text = (TEMPLATES_DIR / name).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", html.escape(value))
    return text


def page(text: str, status: int = 200) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html",
                        headers={"Cache-Control": "no-store", **PAGE_HEADERS})


def _safe_next(raw: str | None) -> str:
    """Only local paths: never a redirect to another site after sign-in."""
    if raw and raw.startswith("/") and not raw.startswith("//") and "\\" not in raw and \
            all(c.isprintable() for c in raw):
        return raw
    return HOME


@routes.get("/signin")
async def signin_page(request: web.Request) -> web.Response:
    return page(render("signin.html", error="", next=_safe_next(request.query.get("next"))))


@routes.post("/signin")
async def signin(request: web.Request) -> web.StreamResponse:
    if not same_origin(request):
        raise Forbidden("sign-in must come from this site", code="csrf_failed")
    try:
        form = await request.post()
    except (ValueError, AssertionError, HttpProcessingError) as exc:  # e.g. multipart without a boundary
        raise BadRequest(f"malformed form body: {exc.__class__.__name__}", code="malformed_form") from None
    token = str(form.get("token", "")).strip()
    next_path = _safe_next(str(form.get("next", "")))
    limits = request.app.get(RATE_LIMITS)
    if limits is not None and token and limits.exempt(limits.credential(token)):
        limits = None  # SHOPLINK_RATE_EXEMPT_TOKENS (test and fuzzing runs)
    if limits is not None and token:  # a token whose head or tail is being guessed waits
        verdict = await limits.before_signin(token)
        if not verdict.allowed:
            return too_many(verdict)
    opened = await request.app[SESSIONS].open(token) if token else None
    if opened is None:
        if limits is not None and token:
            verdict = await limits.failed_auth(limits.keys.client(request.remote), token)
            if not verdict.allowed:
                return too_many(verdict)
        return page(render("signin.html", error="That token is not valid (or was revoked).", next=next_path),
                    status=401)
    cookie, _ = opened
    response = web.Response(status=303, headers={"Location": next_path})
    secure = request.app[SETTINGS].public_base_url.startswith("https://") or request.secure
    response.set_cookie(COOKIE_NAME, cookie, max_age=int(SESSION_TTL.total_seconds()), httponly=True,
                        samesite="Lax", secure=secure, path="/")
    return response


@routes.post("/signout")
async def signout(request: web.Request) -> web.StreamResponse:
    # The session middleware already checked the CSRF token for this POST.
    cookie = request.cookies.get(COOKIE_NAME)
    if cookie and WEB_SESSION in request:
        await request.app[SESSIONS].close(cookie)
    response = web.Response(status=303, headers={"Location": "/signin"})
    response.del_cookie(COOKIE_NAME, path="/")
    return response


@routes.get("/web/session")
async def session_info(request: web.Request) -> web.Response:
    """Who is signed in and the CSRF token for this session (same-origin scripts only)."""
    session = request.get(WEB_SESSION)
    if session is None:
        raise Unauthorized("not signed in")
    who = session.principal
    return json_response({"account_id": who.account_id, "name": who.name,
                          "roles": sorted(str(r) for r in who.roles), "csrf_token": session.csrf_token},
                         headers={"Cache-Control": "no-store"})


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
    app.router.add_static("/static/", STATIC_DIR, name="static", append_version=True)
