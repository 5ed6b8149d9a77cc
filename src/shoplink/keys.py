"""Every `web.AppKey`, typed with the real class."""

from __future__ import annotations

import asyncpg
from aiohttp import web
from redis.asyncio import Redis

from shoplink.auth.models import Principal
from shoplink.auth.service import AuthService
from shoplink.catalog.service import CatalogService
from shoplink.config import Settings
from shoplink.logs import REQUEST_ID

__all__ = ["AUTH", "CATALOG", "DB_POOL", "PRINCIPAL", "REDIS", "REQUEST_ID", "SETTINGS"]

SETTINGS = web.AppKey("settings", Settings)
DB_POOL = web.AppKey("db_pool", asyncpg.Pool)
REDIS = web.AppKey("redis", Redis)
AUTH = web.AppKey("auth_service", AuthService)
CATALOG = web.AppKey("catalog_service", CatalogService)

# Per-request values.
PRINCIPAL = web.RequestKey("principal", Principal)
