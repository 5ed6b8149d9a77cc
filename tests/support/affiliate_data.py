"""Test data for the affiliate program: sellers with products, plans, anchors made by SQL (the
anchor API lives on another branch), click events exactly as the producer writes them, a clock."""

from __future__ import annotations

import functools
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
from jsonschema import Draft202012Validator
from redis.asyncio import Redis

from shoplink.anchors.codes import new_code
from shoplink.ids import new_ulid
from shoplink.paths import SCHEMAS_DIR

from support.api import AccountFactory, Api
from support.domains import verified_shop
from support.wait import until

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A controllable clock to inject as `AffiliateService.now`."""

    def __init__(self, start: datetime = T0) -> None:
        self.value = start

    def __call__(self) -> datetime:
        return self.value

    def advance(self, **delta: float) -> datetime:
        self.value += timedelta(**delta)
        return self.value

    def ms(self) -> int:
        return int(self.value.timestamp() * 1000)


def ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


@functools.cache
def click_validator() -> Draft202012Validator:
    schema = orjson.loads((SCHEMAS_DIR / "click_event.schema.json").read_bytes())
    return Draft202012Validator(schema)


def new_viewer() -> str:
    return secrets.token_hex(16)


def click_event(*, anchor_id: int | None, product_id: int | None, shop_id: int | None,
                creator_id: int | None, plan_id: int | None, rate_bp: int | None = None,
                source: str | None = None, ts_ms: int, viewer: str | None = None,
                ua_class: str = "human", outcome: str = "redirected", code: str | None = None,
                event_id: str | None = None, **extra: Any) -> dict[str, Any]:
    """A click event as the /r/{code} producer writes it; validated against the schema."""
    event: dict[str, Any] = {
        "schema_version": 1, "event_id": event_id or new_ulid(ts_ms), "ts_ms": ts_ms,
        "code": code or new_code(), "outcome": outcome, "surface": "live",
        "anchor_id": anchor_id, "video_id": None, "live_session_id": 1, "playback_s": 12.5,
        "t_status": "not_applicable", "product_id": product_id, "shop_id": shop_id,
        "creator_id": creator_id, "plan_id": plan_id,
        "commission": None if plan_id is None else {"rate_bp": rate_bp,
                                                    "source": source or "plan_rate"},
        "viewer": viewer or new_viewer(), "new_viewer": False, "net": secrets.token_hex(8),
        "ua_class": ua_class, "ua_family": None, "referrer_host": "social.example",
        **extra,
    }
    click_validator().validate(event)
    return event


def stream_for(anchor_id: int | None, shards: int = 4) -> str:
    return f"shoplink:clicks:{{{(anchor_id or 0) % shards}}}"


async def xadd_click(redis: Redis, event: dict[str, Any], shards: int = 4) -> bytes:
    """XADD the event as the producer does: one field `e` holding the JSON."""
    entry_id = await redis.xadd(stream_for(event["anchor_id"], shards), {"e": orjson.dumps(event)})
    assert isinstance(entry_id, bytes)
    return entry_id


async def seller_with_products(make_account: AccountFactory, *, prices: list[str], currency: str = "USD",
                               domain: str = "shop.example") -> tuple[Api, int, list[int]]:
    seller = await make_account("seller")
    shop = await verified_shop(seller, {"name": "Shop", "domains": [domain]})
    ids = []
    for n, price in enumerate(prices):
        reply = await seller.post(f"/api/v1/shops/{shop['id']}/products",
                                  {"title": f"Item {n}", "url": f"https://{domain}/p/{n}",
                                   "price": price, "currency": currency})
        assert reply.status == 201, reply.body
        ids.append(reply.body["id"])
    return seller, shop["id"], ids


async def create_plan(seller: Api, product_ids: list[int], *, rate: str = "10.00",
                      kind: str = "open", **extra: Any) -> dict[str, Any]:
    body = {"name": "Spring promo", "kind": kind, "rate": rate,
            "products": [{"product_id": p} for p in product_ids], **extra}
    reply = await seller.post("/api/v1/plans", body)
    assert reply.status == 201, reply.body
    plan: dict[str, Any] = reply.body
    return plan


async def insert_anchor(pool: asyncpg.Pool, *, creator_id: int, product_id: int,
                        plan_id: int | None) -> tuple[int, str]:
    """An anchor on a live session of the creator, made by SQL (the anchor API is elsewhere)."""
    async with pool.acquire() as con:
        live_id = await con.fetchval(
            "INSERT INTO live_sessions (owner_id, title) VALUES ($1, 'Live') RETURNING id",
            creator_id)
        code = new_code()
        anchor_id = await con.fetchval(
            """INSERT INTO anchors (code, surface, live_session_id, product_id, publisher_id, plan_id)
               VALUES ($1, 'live', $2, $3, $4, $5) RETURNING id""",
            code, live_id, product_id, creator_id, plan_id)
    return anchor_id, code


async def wait_for_clicks(pool: asyncpg.Pool, event_ids: list[str], timeout: float = 30.0) -> None:
    """Until the attribution consumer (`shoplink count`: the `count_worker` fixture) has stored
    these clicks."""
    async def stored() -> bool:
        found = await pool.fetchval(
            "SELECT count(*) FROM attributed_clicks WHERE event_id = ANY($1::text[])", event_ids)
        return bool(found == len(event_ids))

    await until(stored, timeout=timeout, interval=0.05)
