"""Every `web.AppKey`, typed with the real class."""

from __future__ import annotations

import asyncpg
from aiohttp import web
from redis.asyncio import Redis

from shoplink.analytics.models import StatsAccess
from shoplink.analytics.service import StatsService
from shoplink.anchors.rights import PromotionRights
from shoplink.auth.models import Principal
from shoplink.auth.service import AuthService
from shoplink.catalog.service import CatalogService
from shoplink.changes import ChangeBus
from shoplink.config import Settings
from shoplink.logs import REQUEST_ID
from shoplink.metrics import Registry

__all__ = [
    "AUTH", "CATALOG", "CHANGES", "DB_POOL", "METRICS", "PRINCIPAL", "PROMOTION_RIGHTS", "REDIS",
    "REQUEST_ID", "SETTINGS", "STATS", "STATS_ACCESS",
]

SETTINGS = web.AppKey("settings", Settings)
DB_POOL = web.AppKey("db_pool", asyncpg.Pool)
REDIS = web.AppKey("redis", Redis)
AUTH = web.AppKey("auth_service", AuthService)
CATALOG = web.AppKey("catalog_service", CatalogService)
CHANGES = web.AppKey("change_bus", ChangeBus)
METRICS = web.AppKey("metrics", Registry)
PROMOTION_RIGHTS = web.AppKey("promotion_rights", PromotionRights)
STATS = web.AppKey("stats_service", StatsService)
STATS_ACCESS = web.AppKey("stats_access", StatsAccess)  # set .plan_owner (affiliates) at start-up

# Per-request values.
PRINCIPAL = web.RequestKey("principal", Principal)
