"""Running the HTTP server: event loop, signals, graceful shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys

from aiohttp import web

from shoplink import db
from shoplink.app import UnmigratedDatabase, create_app
from shoplink.config import Settings
from shoplink.logs import AccessLogger
from shoplink.supervisor import WorkerLink

log = logging.getLogger(__name__)


async def _tune_gc(app: web.Application) -> None:
    """After start-up (every service built): move what exists to the permanent generation and
    collect the young generation less often. Requests allocate many short-lived objects and
    create few cycles; with the default threshold (700) the collector ran every few requests
    and scanned the young objects each time (measured in bench/results/clicks.md)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


async def apply_migrations(settings: Settings) -> None:
    con = await db.connect(settings.database_url)
    try:
        applied = await db.migrate(con)
    finally:
        await con.close()
    if applied:
        log.info("migrations applied", extra={"applied": applied})


def serve(settings: Settings, *, migrate_first: bool = False, worker: WorkerLink | None = None) -> int:
    """Run one server process. `worker`: it is one of `serve --workers N`'s processes (its
    socket shares the port through SO_REUSEPORT; it tells the supervisor when it is ready)."""
    try:
        import uvloop
        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        if migrate_first:
            loop.run_until_complete(apply_migrations(settings))
        if settings.uses_default_secret:
            log.warning("SHOPLINK_SECRET_KEY is the development default; set a real secret")
        app = create_app(settings)
        app.on_startup.append(_tune_gc)  # after the cleanup contexts' start-up
        if worker is not None:
            app.on_startup.append(worker.on_startup)
        log.info("listening", extra={"url": settings.public_base_url,
                                     "bind": f"{settings.host}:{settings.port}"})
        web.run_app(app, host=settings.host, port=settings.port, loop=loop, print=None,
                    access_log_class=AccessLogger,
                    access_log=logging.getLogger("shoplink.access") if settings.access_log else None,
                    shutdown_timeout=10, handle_signals=True,
                    reuse_port=True if worker is not None else None)
    except UnmigratedDatabase as exc:
        print(f"shoplink: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"shoplink: cannot start: {exc}", file=sys.stderr)
        return 1
    finally:
        if not loop.is_closed():
            loop.close()
    return 0
