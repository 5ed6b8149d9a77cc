"""Starting and stopping the live machinery with the app (a cleanup context)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from shoplink.keys import CHANGES, DB_POOL, LIVE, METRICS, PROMOTION_RIGHTS, REDIS, SETTINGS
from shoplink.live.hub import LiveHub, ViewerKeys
from shoplink.live.service import LiveService


async def close_viewers(app: web.Application) -> None:
    """on_shutdown: end every event stream so the server does not wait for them."""
    if LIVE in app:
        app[LIVE].hub.close_all()


async def live_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    hub = LiveHub(app[REDIS], app[DB_POOL], base_url=settings.public_base_url,
                  heartbeat_s=settings.live_heartbeat_s, resync_s=settings.live_resync_s,
                  metrics=app[METRICS], viewer_keys=ViewerKeys(settings.secret_key))
    app[LIVE] = LiveService(app[DB_POOL], hub, app[PROMOTION_RIGHTS], app[CHANGES],
                            max_products=settings.live_max_products, max_pins=settings.live_max_pins,
                            max_video_anchors=settings.max_anchors_per_video)
    app[CHANGES].subscribe(hub.on_change)
    tasks = [asyncio.create_task(hub.run(), name="live-subscription"),
             asyncio.create_task(hub.ticker(), name="live-ticker")]
    yield
    hub.close_all()
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await hub.shutdown()
