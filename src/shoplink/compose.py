"""The composition root: every service of the app, built here in start-up order.

Read `services` top to bottom: each service gets its collaborators through its constructor
(other domains typed by small Protocols), so nothing is wired after construction and no
correctness depends on which context happened to start first. Background tasks and resources
are entered on one exit stack, so shutdown runs in exactly the reverse order: the click writer
flushes while Redis and PostgreSQL are still open, the pool closes before Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

from shoplink import db
from shoplink.affiliates.attribution import AttributionConsumer
from shoplink.affiliates.conversions import ConversionService, MoneyRules
from shoplink.affiliates.pending import PendingSales
from shoplink.affiliates.reports import ReportService
from shoplink.affiliates.service import AffiliateService, RateRules
from shoplink.affiliates.settlement import SettlementService
from shoplink.affiliates.statements import StatementService
from shoplink.analytics import status as analytics_status
from shoplink.analytics.service import StatsService
from shoplink.anchors.rights import PromotionRights
from shoplink.anchors.service import AnchorService, archive_for_deleted_video
from shoplink.anchors.timeline import TimelineCache
from shoplink.auth.service import AuthService
from shoplink.catalog.service import CatalogService
from shoplink.changes import ChangeBus
from shoplink.clicks.resolver import Resolver
from shoplink.clicks.service import ClickService
from shoplink.config import Settings
from shoplink.delivery.writer import ClickWriter
from shoplink.domains.service import DomainService
from shoplink.funnel.service import FunnelService, SurfaceCache
from shoplink.keys import (
    AFFILIATE_REPORTS,
    AFFILIATES,
    ANCHORS,
    ATTRIBUTION,
    AUTH,
    CATALOG,
    CHANGES,
    CLICK_RESOLVER,
    CLICK_WRITER,
    CLICKS,
    CONVERSIONS,
    DB_POOL,
    DOMAINS,
    FUNNEL,
    LIVE,
    METRICS,
    PROMOTION_RIGHTS,
    RATE_LIMITS,
    REDIS,
    SESSIONS,
    SETTINGS,
    SETTLEMENT,
    STATEMENTS,
    STATS,
    TIMELINES,
    VIDEOS,
)
from shoplink.live.hub import LiveHub, ViewerKeys
from shoplink.live.service import LiveService
from shoplink.metrics import Registry
from shoplink.redis import RedisTopology
from shoplink.security.ratelimit import Limit, RateLimiter, RateLimits
from shoplink.streams import event_stream_key, stream_key
from shoplink.videos.media import MediaStore, MediaWorkers
from shoplink.videos.probe import ProbeLimits
from shoplink.videos.service import VideoService
from shoplink.web.sessions import SessionService

log = logging.getLogger(__name__)

TIMELINE_TTL_S = 60.0


class UnmigratedDatabase(RuntimeError):
    pass


async def services(app: web.Application) -> AsyncIterator[None]:
    """Cleanup context: build every service (needs app[SETTINGS] and app[METRICS]), then, at
    shutdown, stop them in reverse order."""
    settings, metrics = app[SETTINGS], app[METRICS]
    async with contextlib.AsyncExitStack() as stack:
        # Redis (one node or a cluster) and the change bus that keeps every instance's caches correct.
        redis = RedisTopology.from_settings(settings)
        await redis.connect()  # a cluster's slot map; Redis being down does not stop start-up
        stack.push_async_callback(redis.aclose)
        changes = ChangeBus(redis)
        await stack.enter_async_context(_task(changes.run(), "change-bus"))
        app[REDIS], app[CHANGES] = redis, changes

        # PostgreSQL, accounts, and shops with their proven domains and products.
        pool = await _pool(settings)
        stack.push_async_callback(pool.close)
        auth = AuthService(pool)
        domains = DomainService.from_settings(pool, settings, changes)
        catalog = CatalogService(pool, domains=domains, allow_http_urls=settings.allow_http_urls,
                                 changes=changes, media_base_url=settings.public_base_url)
        app[DB_POOL], app[AUTH], app[DOMAINS], app[CATALOG] = pool, auth, domains, catalog
        app[SESSIONS] = SessionService(pool, auth)
        if settings.rate_limits:  # the management API's limits keep their buckets in Redis
            app[RATE_LIMITS] = _rate_limits(settings, redis)

        # The affiliate program: plans, enrolments, the commission terms clicks carry.
        plans = AffiliateService(pool, catalog=catalog, rules=RateRules(
            min_bp=settings.commission_min_bp, max_bp=settings.commission_max_bp,
            notice=timedelta(days=settings.rate_cut_notice_days)), changes=changes)
        changes.subscribe(plans.on_change)
        app[AFFILIATES] = plans
        money = MoneyRules(window=timedelta(days=settings.attribution_window_days),
                           pending=timedelta(seconds=settings.attribution_pending_s),
                           return_window=timedelta(days=settings.return_window_days))
        app[CONVERSIONS] = ConversionService(pool, catalog=catalog, plans=plans, rules=money)
        app[AFFILIATE_REPORTS] = ReportService(pool)
        app[SETTLEMENT] = SettlementService(pool, conversions=app[CONVERSIONS])
        app[STATEMENTS] = StatementService(pool, conversions=app[CONVERSIONS])
        attribution = AttributionConsumer(
            redis, pool, shards=settings.click_shards,
            reclaim_idle_ms=settings.attribution_reclaim_idle_s * 1000, metrics=metrics,
            pending=PendingSales(pool, window=money.window, clock=plans.now, metrics=metrics),
            sweep_s=settings.attribution_sweep_s)
        app[ATTRIBUTION] = attribution
        if settings.attribution_consumer:  # off by default: `shoplink count` runs it
            await stack.enter_async_context(_task(attribution.run(), "attribution"))

        # Who may anchor which product (own products, or through a plan one joined).
        rights = PromotionRights(catalog, plans)
        app[PROMOTION_RIGHTS] = rights

        # Videos, their anchors and the viewer timelines.
        store = MediaStore(settings.media_dir)
        store.ensure()
        workers = MediaWorkers(settings.media_workers)
        stack.callback(workers.shutdown)
        videos = VideoService(pool, store, workers, changes, max_upload_bytes=settings.max_upload_bytes,
                              allow_server_paths=settings.allow_server_paths,
                              delete_hooks=[archive_for_deleted_video],
                              probe_limits=ProbeLimits(max_pixels=settings.max_video_pixels,
                                                       max_duration_s=settings.max_video_duration_s))
        anchors = AnchorService(pool, videos, catalog, rights, changes,
                                max_per_video=settings.max_anchors_per_video,
                                public_base_url=settings.public_base_url,
                                snap_tolerance_s=settings.snap_tolerance_s)
        timelines = TimelineCache(anchors.timeline_source, ttl_s=TIMELINE_TTL_S,
                                  max_age_s=settings.timeline_max_age_s)
        changes.subscribe(timelines.invalidate)
        _timeline_metrics(metrics, timelines)
        app[VIDEOS], app[ANCHORS], app[TIMELINES] = videos, anchors, timelines

        # Live sessions: pins pushed to this instance's viewers, and through Redis to the others'.
        hub = LiveHub(redis, pool, base_url=settings.public_base_url, heartbeat_s=settings.live_heartbeat_s,
                      resync_s=settings.live_resync_s, metrics=metrics,
                      viewer_keys=ViewerKeys(settings.secret_key))
        stack.push_async_callback(hub.shutdown)
        app[LIVE] = LiveService(pool, hub, rights, anchors, videos, changes,
                                max_products=settings.live_max_products, max_pins=settings.live_max_pins,
                                allow_http_urls=settings.allow_http_urls)
        changes.subscribe(hub.on_change)
        await stack.enter_async_context(_task(hub.run(), "live-subscription"))
        await stack.enter_async_context(_task(hub.ticker(), "live-ticker"))
        stack.callback(hub.close_all)  # viewers' streams end before the hub's tasks stop

        # Clicks: the resolver follows the change bus; the writer replays old spools now and, at
        # shutdown, flushes to Redis or spools what it cannot.
        resolver = Resolver(pool, shards=settings.click_shards, max_size=settings.click_cache_size,
                            ttl_s=settings.click_cache_ttl_s, negative_ttl_s=settings.click_negative_ttl_s,
                            allow_http=settings.allow_http_urls, max_stale_s=settings.click_cache_max_stale_s,
                            terms=plans)
        changes.subscribe(resolver.on_change)
        writer = await _start_writer(stack, settings, redis, settings.spool_dir, stream_key)
        clicks = ClickService(settings, resolver, writer)
        clicks.register_metrics(metrics)
        app[CLICK_RESOLVER], app[CLICK_WRITER], app[CLICKS] = resolver, writer, clicks

        # The player's events: the same delivery on a stream family (and a spool) of their own.
        event_writer = await _start_writer(stack, settings, redis, settings.spool_dir / "events",
                                           event_stream_key)
        funnel = FunnelService(settings, resolver, SurfaceCache(pool), event_writer)
        funnel.register_metrics(metrics)
        app[FUNNEL] = funnel

        # Stats reads and the click-stream collector on /metrics (counting is `shoplink count`).
        app[STATS] = StatsService(pool, redis.client, settings, plans, sales=app[AFFILIATE_REPORTS])
        analytics_status.register_metrics(metrics, redis.client, settings)
        yield


async def close_viewers(app: web.Application) -> None:
    """on_shutdown: end every live event stream so the server does not wait for them."""
    if LIVE in app:
        app[LIVE].hub.close_all()


async def _pool(settings: Settings) -> asyncpg.Pool:
    """The pool; refuses (closed again) a database with unapplied migrations."""
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
    return pool


def _rate_limits(settings: Settings, redis: RedisTopology) -> RateLimits:
    if settings.rate_exempt_tokens:
        log.warning("rate limits do not apply to the tokens of SHOPLINK_RATE_EXEMPT_TOKENS "
                    "(meant for test and fuzzing runs)", extra={"tokens": len(settings.rate_exempt_tokens)})
    return RateLimits(
        RateLimiter(redis.client), settings.secret_key,
        api_token=Limit(settings.rate_api_token_per_s, settings.rate_api_token_burst),
        api_client=Limit(settings.rate_api_client_per_s, settings.rate_api_client_burst),
        auth_failures=Limit(settings.rate_auth_fail_per_s, settings.rate_auth_fail_burst),
        exempt_tokens=settings.rate_exempt_tokens)


@contextlib.asynccontextmanager
async def _task(coro: Coroutine[Any, Any, Any], name: str) -> AsyncIterator[None]:
    """A background task for the app's life: cancelled (and awaited) on the way out."""
    task = asyncio.create_task(coro, name=name)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _start_writer(stack: contextlib.AsyncExitStack, settings: Settings, redis: RedisTopology, spool_dir: Path,
                        stream: Callable[[int], str]) -> ClickWriter:
    """A started event writer onto one stream family (clicks, or the player's events), with the
    delivery settings both share, closed (and its totals logged) when `stack` unwinds."""
    writer = ClickWriter(settings.redis_url, spool_dir, flush_interval_s=settings.click_flush_ms / 1000,
                         batch_size=settings.click_flush_batch, buffer_max=settings.click_buffer_max,
                         timeout_s=settings.click_redis_timeout_s,
                         fsync_interval_s=settings.spool_fsync_ms / 1000,
                         spool_max_bytes=settings.spool_max_bytes, router=redis, stream=stream)
    await writer.start()
    stack.push_async_callback(_close_writer, writer)
    return writer


async def _close_writer(writer: ClickWriter) -> None:
    await writer.close()
    stats: dict[str, Any] = {"written": writer.written, "spooled": writer.spooled,
                             "replayed": writer.replayed}
    log.info("click writer closed", extra=stats)


def _timeline_metrics(metrics: Registry, timelines: TimelineCache) -> None:
    hits = metrics.counter("shoplink_timeline_cache_hits_total", "Timeline cache hits since start")
    misses = metrics.counter("shoplink_timeline_cache_misses_total", "Timeline cache misses since start")
    size = metrics.gauge("shoplink_timeline_cache_entries", "Videos in the timeline cache")

    async def collect() -> None:
        hits.set(timelines.hits)
        misses.set(timelines.misses)
        size.set(len(timelines))

    metrics.register_collector(collect)
