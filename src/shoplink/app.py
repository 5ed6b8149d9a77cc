"""The application factory: middleware, the route table, and the services (compose.py)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable

from aiohttp import web

from shoplink import aiohttp_internals, compose, fastpath, health, logs, metrics
from shoplink.affiliates import views as affiliate_views
from shoplink.analytics import views as analytics_views
from shoplink.anchors import views as anchor_views
from shoplink.auth import views as auth_views
from shoplink.auth.middleware import auth_middleware
from shoplink.catalog import views as catalog_views
from shoplink.clicks import views as click_views
from shoplink.config import Settings
from shoplink.errors import Handler, RequestTimeout, error_middleware
from shoplink.fastpath import fast_path_middleware
from shoplink.funnel import views as funnel_views
from shoplink.keys import CLICKS, FUNNEL, METRICS, REQUEST_ID, SETTINGS
from shoplink.live import views as live_views
from shoplink.metrics import Registry
from shoplink.security.cors import cors_middleware
from shoplink.security.headers import security_headers_middleware
from shoplink.security.middleware import rate_limit_middleware
from shoplink.videos import views as video_views
from shoplink.web import business, console, dashboard, demo_page, demo_shop, home, money_pages, player, studio
from shoplink.web import views as web_views
from shoplink.web.middleware import session_middleware

log = logging.getLogger(__name__)

# Each domain registers its routes here, in one visible table.
ROUTE_SETUPS: list[Callable[[web.Application], None]] = [
    health.setup_routes,
    metrics.setup_routes,
    auth_views.setup_routes,
    catalog_views.setup_routes,
    web_views.setup_routes,
    demo_shop.setup_routes,
    affiliate_views.setup_routes,
    video_views.setup_routes,
    anchor_views.setup_routes,
    live_views.setup_routes,
    click_views.setup_routes,
    funnel_views.setup_routes,
    analytics_views.setup_routes,
    studio.setup_routes,
    player.setup_routes,
    console.setup_routes,
    dashboard.setup_routes,
    demo_page.setup_routes,
    home.setup_routes,
    business.setup_routes,
    money_pages.setup_routes,
]


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    incoming = request.headers.get("X-Request-Id", "")
    request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else secrets.token_hex(8)
    request[REQUEST_ID] = request_id
    response = await handler(request)
    response.headers["X-Request-Id"] = request_id
    return response


def create_app(settings: Settings) -> web.Application:
    logs.keep_addresses_out()  # no client address in any log line, aiohttp's own included
    app = web.Application(
        # fast_path_middleware first: public hot routes skip the others (see fastpath.py).
        # cors_middleware outside error_middleware: public paths' errors carry CORS too (and it
        # answers their preflights); then page security headers, errors, rate limits (per client
        # and token, before the session and token lookups).
        middlewares=[fast_path_middleware, request_id_middleware, cors_middleware,
                     security_headers_middleware, error_middleware, rate_limit_middleware,
                     session_middleware, auth_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[METRICS] = Registry()
    app.cleanup_ctx.append(compose.services)  # every service, in start-up order (compose.py)
    app.on_shutdown.append(compose.close_viewers)  # long-lived event streams end before the server waits
    for setup in ROUTE_SETUPS:
        setup(app)
    return app


def install_read_timeouts(runner: web.AppRunner) -> None:
    """Slow clients are cut: SHOPLINK_HEADER_TIMEOUT_S for a request's head, SHOPLINK_BODY_TIMEOUT_S
    and SHOPLINK_BODY_MIN_RATE for its body (aiohttp has neither; see shoplink.aiohttp_internals).
    Call after `runner.setup()` and before the site accepts connections."""
    assert runner.server is not None, "runner.setup() first"
    settings = runner.app[SETTINGS]
    aiohttp_internals.install_read_timeouts(runner.server, aiohttp_internals.ReadTimeouts(
        header_s=settings.header_timeout_s, body_s=settings.body_timeout_s,
        body_min_rate=settings.body_min_rate,
        body_error=lambda: RequestTimeout("the request body arrived too slowly")))


def install_fast_dispatch(runner: web.AppRunner) -> None:
    """The server-level fast path (shoplink.fastpath.install): plain `/r/{code}` clicks and
    `POST /v1/events` beacons (and their preflight) are answered before aiohttp's router and
    middleware. Call after `runner.setup()` (the click
    service exists once the app has started) and before the site accepts connections."""
    assert runner.server is not None, "runner.setup() first"
    fastpath.install(runner.server, {"/r/": runner.app[CLICKS].click},
                     exact=funnel_views.fast_handlers(runner.app[FUNNEL]))
