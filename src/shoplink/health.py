"""Liveness and readiness."""

from __future__ import annotations

import asyncio

from aiohttp import web

from shoplink.http import json_response
from shoplink.keys import DB_POOL, REDIS

routes = web.RouteTableDef()
_CHECK_TIMEOUT = 2.0


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """The process is up and its event loop answers."""
    return json_response({"status": "ok"})


async def _check_postgres(app: web.Application) -> None:
    async with app[DB_POOL].acquire(timeout=_CHECK_TIMEOUT) as con:
        await con.fetchval("SELECT 1", timeout=_CHECK_TIMEOUT)


async def _check_redis(app: web.Application) -> None:
    await app[REDIS].ping()


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Ready to serve: both stores answer."""
    checks = {"postgres": _check_postgres, "redis": _check_redis}
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            await asyncio.wait_for(check(request.app), _CHECK_TIMEOUT)
            results[name] = "ok"
        except Exception as exc:  # readiness reports any failure, whatever its kind
            results[name] = f"error: {type(exc).__name__}"
    ready = all(v == "ok" for v in results.values())
    return json_response({"status": "ok" if ready else "unavailable", "checks": results},
                         status=200 if ready else 503)


def setup_routes(app: web.Application) -> None:
    app.add_routes(routes)
