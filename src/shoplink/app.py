"""The application factory: resources in cleanup contexts, middleware, and the route table."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from shoplink import aiohttp_internals, db, fastpath, health, logs, metrics
from shoplink.affiliates import views as affiliate_views
from shoplink.affiliates.context import affiliates_context
from shoplink.analytics import status as analytics_status
from shoplink.analytics import views as analytics_views
from shoplink.analytics.models import StatsAccess
from shoplink.analytics.service import StatsService
from shoplink.anchors import views as anchor_views
from shoplink.anchors.rights import PromotionRights
from shoplink.auth import views as auth_views
from shoplink.auth.middleware import auth_middleware
from shoplink.auth.service import AuthService
from shoplink.catalog import views as catalog_views
from shoplink.catalog.service import CatalogService
from shoplink.changes import ChangeBus
from shoplink.clicks import views as click_views
from shoplink.clicks.service import clicks_context
from shoplink.config import Settings
from shoplink.domains.service import DomainService
from shoplink.errors import Handler, RequestTimeout, error_middleware
from shoplink.fastpath import fast_path_middleware
from shoplink.keys import (
    AFFILIATES,
    AUTH,
    CATALOG,
    CHANGES,
    CLICKS,
    DB_POOL,
    DOMAINS,
    METRICS,
    PROMOTION_RIGHTS,
    REDIS,
    REQUEST_ID,
    SESSIONS,
    SETTINGS,
    STATS,
    STATS_ACCESS,
)
from shoplink.live import views as live_views
from shoplink.live.lifecycle import close_viewers, live_context
from shoplink.metrics import Registry
from shoplink.redis import RedisTopology
from shoplink.security.cors import cors_middleware
from shoplink.security.headers import security_headers_middleware
from shoplink.security.middleware import rate_limit_middleware, rate_limits_context
from shoplink.videos import views as video_views
from shoplink.videos.context import videos_context
from shoplink.web import console, dashboard, demo_page, demo_shop, player, studio
from shoplink.web import views as web_views
from shoplink.web.middleware import session_middleware
from shoplink.web.sessions import SessionService

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
    analytics_views.setup_routes,
    studio.setup_routes,
    player.setup_routes,
    console.setup_routes,
    dashboard.setup_routes,
    demo_page.setup_routes,
]


class UnmigratedDatabase(RuntimeError):
    pass


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    incoming = request.headers.get("X-Request-Id", "")
    request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else secrets.token_hex(8)
    request[REQUEST_ID] = request_id
    response = await handler(request)
    response.headers["X-Request-Id"] = request_id
    return response


async def _redis(app: web.Application) -> AsyncIterator[None]:
    """Redis (one node or a cluster) and the change bus that keeps every instance's caches correct."""
    topology = RedisTopology.from_settings(app[SETTINGS])
    await topology.connect()  # a cluster's slot map; Redis being down does not stop start-up
    app[REDIS] = topology
    bus = ChangeBus(topology)
    app[CHANGES] = bus
    task = asyncio.create_task(bus.run(), name="change-bus")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await topology.aclose()


async def _postgres(app: web.Application) -> AsyncIterator[None]:
    """The pool and the services built on it (refuses an unmigrated database)."""
    settings = app[SETTINGS]
    pool = await db.create_pool(settings.database_url, min_size=settings.db_pool_min,
                                max_size=settings.db_pool_max, timeout_s=settings.db_timeout_s,
                                command_timeout_s=settings.db_command_timeout_s)
    async with pool.acquire() as con:
        pending = await db.pending_migrations(con)
    if pending:
        await pool.close()
        names = ", ".join(f"{m.version}_{m.name}" for m in pending)
        raise UnmigratedDatabase(
            f"database has unapplied migrations ({names}): run `shoplink migrate` "
            "or start with `shoplink serve --migrate`")
    app[DB_POOL] = pool
    app[AUTH] = AuthService(pool)
    app[DOMAINS] = DomainService.from_settings(pool, settings, app[CHANGES])
    app[CATALOG] = CatalogService(pool, domains=app[DOMAINS], allow_http_urls=settings.allow_http_urls,
                                  changes=app[CHANGES], media_base_url=settings.public_base_url)
    app[PROMOTION_RIGHTS] = PromotionRights(app[CATALOG])
    app[SESSIONS] = SessionService(pool, app[AUTH])
    yield
    await pool.close()


async def _connect_domains(app: web.Application) -> AsyncIterator[None]:
    """Hooks between domains, set once every service exists."""
    # Click events snapshot the commission terms of the anchor's plan (affiliate program).
    app[CLICKS].terms_lookup = app[AFFILIATES].terms_lookup
    # Sellers may read the stats of their own promotion plans.
    app[STATS_ACCESS].plan_owner = app[AFFILIATES].plan_owner
    yield


async def _analytics(app: web.Application) -> AsyncIterator[None]:
    """Stats reads and the click-stream collector on /metrics (counting is `shoplink count`)."""
    app[STATS] = StatsService(app[DB_POOL], app[REDIS].client, app[SETTINGS], app[STATS_ACCESS])
    analytics_status.register_metrics(app[METRICS], app[REDIS].client, app[SETTINGS])
    yield


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
    app[STATS_ACCESS] = StatsAccess()
    # Order matters: later contexts use what earlier ones opened; teardown runs in reverse.
    app.cleanup_ctx.extend([_redis, _postgres])
    app.cleanup_ctx.append(rate_limits_context)  # after _redis: keeps its buckets there
    app.cleanup_ctx.append(affiliates_context)  # after _postgres: uses the pool and the catalog
    app.cleanup_ctx.append(videos_context)
    app.cleanup_ctx.append(live_context)
    app.on_shutdown.append(close_viewers)  # long-lived event streams end before the server waits
    app.cleanup_ctx.append(clicks_context)  # after _postgres; flushes/spools clicks at shutdown
    app.cleanup_ctx.append(_analytics)
    app.cleanup_ctx.append(_connect_domains)
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
    """The server-level fast path (shoplink.fastpath.install): plain `/r/{code}` clicks are
    answered before aiohttp's router and middleware. Call after `runner.setup()` (the click
    service exists once the app has started) and before the site accepts connections."""
    assert runner.server is not None, "runner.setup() first"
    fastpath.install(runner.server, {"/r/": runner.app[CLICKS].click})
