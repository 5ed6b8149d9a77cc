"""Start-up of the affiliate program inside the app: services, hooks, the attribution consumer."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from shoplink.affiliates.attribution import AttributionConsumer
from shoplink.affiliates.conversions import ConversionService
from shoplink.affiliates.reports import ReportService
from shoplink.affiliates.service import AffiliateService, RateRules
from shoplink.keys import (
    AFFILIATE_REPORTS,
    AFFILIATES,
    ATTRIBUTION,
    CATALOG,
    CHANGES,
    CONVERSIONS,
    DB_POOL,
    METRICS,
    PROMOTION_RIGHTS,
    REDIS,
    SETTINGS,
)


async def affiliates_context(app: web.Application) -> AsyncIterator[None]:
    """Needs the pool, Redis, the change bus, the catalog and PROMOTION_RIGHTS (set up before)."""
    settings = app[SETTINGS]
    pool = app[DB_POOL]
    rules = RateRules(min_bp=settings.commission_min_bp, max_bp=settings.commission_max_bp,
                      notice=timedelta(days=settings.rate_cut_notice_days))
    plans = AffiliateService(pool, catalog=app[CATALOG], rules=rules, changes=app[CHANGES])
    app[CHANGES].subscribe(plans.on_change)
    app[AFFILIATES] = plans
    app[CONVERSIONS] = ConversionService(
        pool, catalog=app[CATALOG], plans=plans,
        window=timedelta(days=settings.attribution_window_days))
    app[AFFILIATE_REPORTS] = ReportService(pool)
    app[PROMOTION_RIGHTS].plan_lookup = plans.plan_lookup
    consumer = AttributionConsumer(app[REDIS], pool, shards=settings.click_shards,
                                   reclaim_idle_ms=settings.attribution_reclaim_idle_s * 1000,
                                   metrics=app[METRICS])
    app[ATTRIBUTION] = consumer
    task = (asyncio.create_task(consumer.run(), name="attribution")
            if settings.attribution_consumer else None)
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
