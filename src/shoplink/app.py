"""The application factory: resources in cleanup contexts, middleware, and the route table."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from shoplink import db, health
from shoplink.auth import views as auth_views
from shoplink.auth.middleware import auth_middleware
from shoplink.auth.service import AuthService
from shoplink.catalog import views as catalog_views
from shoplink.catalog.service import CatalogService
from shoplink.config import Settings
from shoplink.errors import Handler, error_middleware
from shoplink.keys import AUTH, CATALOG, DB_POOL, REDIS, REQUEST_ID, SETTINGS
from shoplink.redis import create_redis

log = logging.getLogger(__name__)

# Each domain registers its routes here, in one visible table.
ROUTE_SETUPS: list[Callable[[web.Application], None]] = [
    health.setup_routes,
    auth_views.setup_routes,
    catalog_views.setup_routes,
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


async def _postgres(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    pool = await db.create_pool(settings.database_url, min_size=settings.db_pool_min,
                                max_size=settings.db_pool_max)
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
    app[CATALOG] = CatalogService(pool, allow_http_urls=settings.allow_http_urls)
    yield
    await pool.close()


async def _redis(app: web.Application) -> AsyncIterator[None]:
    client = create_redis(app[SETTINGS].redis_url)
    app[REDIS] = client
    yield
    await client.aclose()


def create_app(settings: Settings) -> web.Application:
    app = web.Application(
        middlewares=[request_id_middleware, error_middleware, auth_middleware],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app.cleanup_ctx.extend([_postgres, _redis])
    for setup in ROUTE_SETUPS:
        setup(app)
    return app
