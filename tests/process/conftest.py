"""Fixtures the count-worker tests share."""

from __future__ import annotations

import asyncpg
import pytest

from support.analytics_data import Seed, seed
from support.api import AccountFactory, Api


@pytest.fixture
async def world(pool: asyncpg.Pool, make_account: AccountFactory) -> tuple[Seed, Api]:
    """Seeded shops, videos, lives and anchors of a seller and a creator, and an analyst to read stats."""
    seller = await make_account("seller")
    creator = await make_account("creator")
    analyst = await make_account("analyst")
    return await seed(pool, seller.account_id, creator.account_id), analyst
