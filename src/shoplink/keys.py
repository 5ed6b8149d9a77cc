"""Every `web.AppKey`, typed with the real class."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from shoplink.affiliates.attribution import AttributionConsumer
from shoplink.affiliates.conversions import ConversionService
from shoplink.affiliates.reports import ReportService
from shoplink.affiliates.service import AffiliateService
from shoplink.analytics.models import StatsAccess
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
from shoplink.clicks.writer import ClickWriter
from shoplink.config import Settings
from shoplink.domains.service import DomainService
from shoplink.live.service import LiveService
from shoplink.logs import REQUEST_ID as REQUEST_ID  # re-exported: every key in one module
from shoplink.metrics import Registry
from shoplink.redis import RedisTopology
from shoplink.security.ratelimit import RateLimits
from shoplink.videos.service import VideoService
from shoplink.web.sessions import SessionService, WebSession

SETTINGS = web.AppKey("settings", Settings)
DB_POOL = web.AppKey("db_pool", asyncpg.Pool)
REDIS = web.AppKey("redis", RedisTopology)  # .client, .for_shard(n), pub/sub
AUTH = web.AppKey("auth_service", AuthService)
CATALOG = web.AppKey("catalog_service", CatalogService)
DOMAINS = web.AppKey("domain_service", DomainService)
CHANGES = web.AppKey("change_bus", ChangeBus)
METRICS = web.AppKey("metrics", Registry)
PROMOTION_RIGHTS = web.AppKey("promotion_rights", PromotionRights)
SESSIONS = web.AppKey("web_sessions", SessionService)
AFFILIATES = web.AppKey("affiliate_service", AffiliateService)
CONVERSIONS = web.AppKey("conversion_service", ConversionService)
AFFILIATE_REPORTS = web.AppKey("affiliate_report_service", ReportService)
ATTRIBUTION = web.AppKey("attribution_consumer", AttributionConsumer)
VIDEOS = web.AppKey("video_service", VideoService)
ANCHORS = web.AppKey("anchor_service", AnchorService)
TIMELINES = web.AppKey("timeline_cache", TimelineCache)
LIVE = web.AppKey("live_service", LiveService)
CLICKS = web.AppKey("click_service", ClickService)
CLICK_RESOLVER = web.AppKey("click_resolver", ClickResolver)
CLICK_WRITER = web.AppKey("click_writer", ClickWriter)
STATS = web.AppKey("stats_service", StatsService)
RATE_LIMITS = web.AppKey("rate_limits", RateLimits)  # absent when SHOPLINK_RATE_LIMITS is off
STATS_ACCESS = web.AppKey("stats_access", StatsAccess)  # set .plan_owner (affiliates) at start-up

# Per-request values.
PRINCIPAL = web.RequestKey("principal", Principal)
WEB_SESSION = web.RequestKey("web_session", WebSession)
