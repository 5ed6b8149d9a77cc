"""Every `web.AppKey`, typed with the real class."""

from __future__ import annotations

import asyncpg
from aiohttp import web
from redis.asyncio import Redis

from shoplink.anchors.rights import PromotionRights
from shoplink.auth.models import Principal
from shoplink.auth.service import AuthService
from shoplink.catalog.service import CatalogService
from shoplink.changes import ChangeBus
from shoplink.config import Settings
from shoplink.live.service import LiveService
from shoplink.logs import REQUEST_ID
from shoplink.metrics import Registry

__all__ = [
    "AUTH", "CATALOG", "CHANGES", "DB_POOL", "METRICS", "PRINCIPAL", "PROMOTION_RIGHTS", "REDIS",
    "REQUEST_ID", "SETTINGS",
]

SETTINGS = web.AppKey("settings", Settings)
DB_POOL = web.AppKey("db_pool", asyncpg.Pool)
REDIS = web.AppKey("redis", Redis)
AUTH = web.AppKey("auth_service", AuthService)
CATALOG = web.AppKey("catalog_service", CatalogService)
CHANGES = web.AppKey("change_bus", ChangeBus)
METRICS = web.AppKey("metrics", Registry)
PROMOTION_RIGHTS = web.AppKey("promotion_rights", PromotionRights)
LIVE = web.AppKey("live_service", LiveService)
__all__ += ["LIVE"]

# Per-request values.
PRINCIPAL = web.RequestKey("principal", Principal)
