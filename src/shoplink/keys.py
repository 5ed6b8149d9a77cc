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
from shoplink.clicks.resolver import Resolver as ClickResolver
from shoplink.clicks.service import ClickService
from shoplink.clicks.writer import ClickWriter
from shoplink.config import Settings
from shoplink.logs import REQUEST_ID
from shoplink.metrics import Registry

__all__ = [
    "AUTH", "CATALOG", "CHANGES", "DB_POOL", "METRICS", "PRINCIPAL", "PROMOTION_RIGHTS", "REDIS",
    "REQUEST_ID", "SETTINGS",
]
__all__ += ["CLICKS", "CLICK_RESOLVER", "CLICK_WRITER"]

SETTINGS = web.AppKey("settings", Settings)
DB_POOL = web.AppKey("db_pool", asyncpg.Pool)
REDIS = web.AppKey("redis", Redis)
AUTH = web.AppKey("auth_service", AuthService)
CATALOG = web.AppKey("catalog_service", CatalogService)
CHANGES = web.AppKey("change_bus", ChangeBus)
METRICS = web.AppKey("metrics", Registry)
PROMOTION_RIGHTS = web.AppKey("promotion_rights", PromotionRights)
CLICKS = web.AppKey("click_service", ClickService)
CLICK_RESOLVER = web.AppKey("click_resolver", ClickResolver)
CLICK_WRITER = web.AppKey("click_writer", ClickWriter)

# Per-request values.
PRINCIPAL = web.RequestKey("principal", Principal)
