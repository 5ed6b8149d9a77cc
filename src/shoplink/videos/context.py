"""Start-up of the video and anchor services (an app cleanup context)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from shoplink.anchors.service import AnchorService
from shoplink.anchors.timeline import TimelineCache
from shoplink.keys import (
    ANCHORS,
    CATALOG,
    CHANGES,
    DB_POOL,
    METRICS,
    PROMOTION_RIGHTS,
    SETTINGS,
    TIMELINES,
    VIDEOS,
)
from shoplink.videos.media import MediaStore, MediaWorkers
from shoplink.videos.service import VideoService

TIMELINE_TTL_S = 60.0


async def videos_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    store = MediaStore(settings.media_dir)
    store.ensure()
    workers = MediaWorkers(settings.media_workers)
    videos = VideoService(app[DB_POOL], store, workers, app[CHANGES],
                          max_upload_bytes=settings.max_upload_bytes,
                          allow_server_paths=settings.allow_server_paths)
    anchors = AnchorService(app[DB_POOL], videos, app[CATALOG], app[PROMOTION_RIGHTS], app[CHANGES],
                            max_per_video=settings.max_anchors_per_video,
                            public_base_url=settings.public_base_url,
                            snap_tolerance_s=settings.snap_tolerance_s)
    timelines = TimelineCache(anchors.timeline_source, ttl_s=TIMELINE_TTL_S,
                              max_age_s=settings.timeline_max_age_s)
    app[CHANGES].subscribe(timelines.invalidate)
    app[VIDEOS], app[ANCHORS], app[TIMELINES] = videos, anchors, timelines

    metrics = app[METRICS]
    hits = metrics.counter("shoplink_timeline_cache_hits_total", "Timeline cache hits since start")
    misses = metrics.counter("shoplink_timeline_cache_misses_total", "Timeline cache misses since start")
    size = metrics.gauge("shoplink_timeline_cache_entries", "Videos in the timeline cache")

    async def collect() -> None:
        hits.set(timelines.hits)
        misses.set(timelines.misses)
        size.set(len(timelines))

    metrics.register_collector(collect)
    yield
    workers.shutdown()
