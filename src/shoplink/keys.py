"""Every `web.AppKey`, typed without importing the services at run time.

The types are forward references resolved by the type checker only (`if TYPE_CHECKING:`), so
any module may import its keys from here without importing every domain, and no domain's
import of this module can close a cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import asyncpg
from aiohttp import web

from shoplink.logs import REQUEST_ID as REQUEST_ID  # re-exported: every key in one module

if TYPE_CHECKING:
    from shoplink.affiliates.attribution import AttributionConsumer
    from shoplink.affiliates.conversions import ConversionService
    from shoplink.affiliates.reports import ReportService
    from shoplink.affiliates.service import AffiliateService
    from shoplink.affiliates.settlement import SettlementService
    from shoplink.affiliates.statements import StatementService
    from shoplink.analytics.service import StatsService
    from shoplink.anchors.rights import PromotionRights
    from shoplink.anchors.service import AnchorService
    from shoplink.anchors.timeline import TimelineCache
    from shoplink.auth.models import Principal
    from shoplink.auth.service import AuthService
    from shoplink.catalog.service import CatalogService
    from shoplink.changes import ChangeBus
    from shoplink.clicks.resolver import Resolver as ClickResolver
    from shoplink.clicks.service import ClickService
    from shoplink.config import Settings
    from shoplink.delivery.writer import ClickWriter
    from shoplink.domains.service import DomainService
    from shoplink.funnel.service import FunnelService
    from shoplink.live.service import LiveService
    from shoplink.metrics import Registry
    from shoplink.redis import RedisTopology
    from shoplink.security.ratelimit import RateLimits
    from shoplink.videos.service import VideoService
    from shoplink.web.sessions import SessionService, WebSession

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
DB_POOL = web.AppKey("db_pool", asyncpg.Pool)
REDIS: web.AppKey[RedisTopology] = web.AppKey("redis")  # .client, .for_shard(n), pub/sub
AUTH: web.AppKey[AuthService] = web.AppKey("auth_service")
CATALOG: web.AppKey[CatalogService] = web.AppKey("catalog_service")
DOMAINS: web.AppKey[DomainService] = web.AppKey("domain_service")
CHANGES: web.AppKey[ChangeBus] = web.AppKey("change_bus")
METRICS: web.AppKey[Registry] = web.AppKey("metrics")
PROMOTION_RIGHTS: web.AppKey[PromotionRights] = web.AppKey("promotion_rights")
SESSIONS: web.AppKey[SessionService] = web.AppKey("web_sessions")
AFFILIATES: web.AppKey[AffiliateService] = web.AppKey("affiliate_service")
CONVERSIONS: web.AppKey[ConversionService] = web.AppKey("conversion_service")
AFFILIATE_REPORTS: web.AppKey[ReportService] = web.AppKey("affiliate_report_service")
SETTLEMENT: web.AppKey[SettlementService] = web.AppKey("settlement_service")
STATEMENTS: web.AppKey[StatementService] = web.AppKey("statement_service")
ATTRIBUTION: web.AppKey[AttributionConsumer] = web.AppKey("attribution_consumer")
VIDEOS: web.AppKey[VideoService] = web.AppKey("video_service")
ANCHORS: web.AppKey[AnchorService] = web.AppKey("anchor_service")
TIMELINES: web.AppKey[TimelineCache] = web.AppKey("timeline_cache")
LIVE: web.AppKey[LiveService] = web.AppKey("live_service")
CLICKS: web.AppKey[ClickService] = web.AppKey("click_service")
CLICK_RESOLVER: web.AppKey[ClickResolver] = web.AppKey("click_resolver")
CLICK_WRITER: web.AppKey[ClickWriter] = web.AppKey("click_writer")
FUNNEL: web.AppKey[FunnelService] = web.AppKey("funnel_service")
STATS: web.AppKey[StatsService] = web.AppKey("stats_service")
RATE_LIMITS: web.AppKey[RateLimits] = web.AppKey("rate_limits")  # absent when SHOPLINK_RATE_LIMITS is off

# Per-request values.
PRINCIPAL: web.RequestKey[Principal] = web.RequestKey("principal")
WEB_SESSION: web.RequestKey[WebSession] = web.RequestKey("web_session")
