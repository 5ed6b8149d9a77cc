"""Running the HTTP server: event loop, signals, graceful shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from shoplink import db, metrics
from shoplink.app import create_app, install_fast_dispatch, install_read_timeouts
from shoplink.compose import UnmigratedDatabase
from shoplink.config import Settings
from shoplink.keys import METRICS, SETTINGS
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


def _metrics_port(port: int) -> Callable[[web.Application], AsyncIterator[None]]:
    """This process's /metrics alone on `port` (SHOPLINK_METRICS_PORT + its slot): with
    `serve --workers N` the main port reaches whichever process the kernel picks."""
    async def context(app: web.Application) -> AsyncIterator[None]:
        # `serve` checked that port + slot stays within 65535
        runner = await metrics.serve_registry(app[METRICS], app[SETTINGS].host, port,
                                              setting="SHOPLINK_METRICS_PORT")
        yield
        await runner.cleanup()
    return context


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
        if settings.uses_default_secret:  # only on loopback (`shoplink serve` refuses it elsewhere)
            log.warning("SHOPLINK_SECRET_KEY is the development default; set a real secret")
        app = create_app(settings)
        if settings.metrics_port:  # started with the app: a busy port fails the start-up
            app.cleanup_ctx.append(_metrics_port(settings.metrics_port + (worker.slot if worker else 0)))
        app.on_startup.append(_tune_gc)  # after the cleanup contexts' start-up
        if worker is not None:
            app.on_startup.append(worker.on_startup)
        loop.run_until_complete(_run(app, settings, reuse_port=worker is not None))
    except UnmigratedDatabase as exc:
        print(f"shoplink: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"shoplink: cannot start: {exc}", file=sys.stderr)
        return 1
    finally:
        _close(loop)
    return 0


async def _run(app: web.Application, settings: Settings, *, reuse_port: bool) -> None:
    """What `web.run_app` does, plus the server-level fast path (`install_fast_dispatch`),
    which needs the runner's server between its set-up and the first connection. Returns after
    SIGTERM or SIGINT once the app has shut down (connections drained, clicks flushed)."""
    stop = asyncio.Event()  # set by SIGTERM/SIGINT, also one that arrives during the start-up
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(
        app, access_log_class=AccessLogger, shutdown_timeout=10,
        access_log=logging.getLogger("shoplink.access") if settings.access_log else None)
    await runner.setup()  # the app's start-up: every cleanup context and on_startup hook
    try:
        install_fast_dispatch(runner)
        install_read_timeouts(runner)
        if not stop.is_set():
            site = web.TCPSite(runner, settings.host, settings.port, reuse_port=reuse_port or None)
            await site.start()
            log.info("listening", extra={"url": settings.public_base_url,
                                         "bind": f"{settings.host}:{settings.port}"})
            await stop.wait()
    finally:
        await runner.cleanup()  # stops accepting, drains, runs on_shutdown and the cleanups


def _close(loop: asyncio.AbstractEventLoop) -> None:
    if loop.is_closed():
        return
    try:
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    finally:
        loop.close()
