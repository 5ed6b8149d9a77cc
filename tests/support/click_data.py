"""Rows the click tests need, created for real: the catalog through its API, and (until the
anchors API lands) videos, live sessions and anchors inserted with SQL into the test database.
Also helpers to read what really landed in the click streams."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import asyncpg
import orjson
from redis.asyncio import Redis

from shoplink.anchors.codes import new_code
from shoplink.redis import AnyRedis

from support.api import Api
from support.domains import verified_shop
from support.wait import until


@dataclass
class Shop:
    seller: Api
    shop_id: int
    product_ids: list[int]


async def make_shop(seller: Api, *, domains: list[Any] | None = None, fallback_url: str | None = None,
                    urls: tuple[str, ...] = ("https://acme.example/p/shoe?color=red#reviews",)) -> Shop:
    body: dict[str, Any] = {"name": "Acme", "domains": domains or ["acme.example"]}
    if fallback_url is not None:
        body["fallback_url"] = fallback_url
    shop_id = (await verified_shop(seller, body))["id"]
    product_ids = []
    for n, url in enumerate(urls):
        reply = await seller.post(f"/api/v1/shops/{shop_id}/products", {"title": f"Item {n}", "url": url})
        assert reply.status == 201, reply.body
        product_ids.append(reply.body["id"])
    return Shop(seller, shop_id, product_ids)


async def insert_video(pool: asyncpg.Pool, owner_id: int, *, duration_s: float = 30.0,
                       status: str = "active") -> int:
    video_id: int = await pool.fetchval(
        """INSERT INTO videos (owner_id, title, file_path, size_bytes, duration_s, fps, frame_count,
                               width, height, codec, status)
           VALUES ($1, 'clip', '/tmp/clip.mp4', 1000, $2, 30, $3, 720, 1280, 'h264', $4) RETURNING id""",
        owner_id, duration_s, max(1, int(duration_s * 30)), status)
    return video_id


async def insert_live(pool: asyncpg.Pool, owner_id: int, *, status: str = "live",
                      started_at: datetime | None = None) -> int:
    if status == "live" and started_at is None:
        started_at = datetime.now(UTC)
    live_id: int = await pool.fetchval(
        "INSERT INTO live_sessions (owner_id, title, status, started_at) VALUES ($1, 'live', $2, $3) "
        "RETURNING id", owner_id, status, started_at)
    return live_id


async def insert_anchor(pool: asyncpg.Pool, *, product_id: int, publisher_id: int,
                        video_id: int | None = None, live_session_id: int | None = None,
                        plan_id: int | None = None, code: str | None = None,
                        status: str = "active") -> tuple[int, str]:
    code = code or new_code()
    surface = "live" if live_session_id is not None else "video"
    anchor_id: int = await pool.fetchval(
        """INSERT INTO anchors (code, surface, video_id, live_session_id, product_id, publisher_id,
                                plan_id, start_s, end_s, status, archived_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
                   CASE WHEN $10 = 'archived' THEN now() END) RETURNING id""",
        code, surface, video_id, live_session_id, product_id, publisher_id, plan_id,
        0.0 if surface == "video" else None, 10.0 if surface == "video" else None, status)
    return anchor_id, code


async def archive_anchor(pool: asyncpg.Pool, anchor_id: int) -> None:
    await pool.execute("UPDATE anchors SET status = 'archived', archived_at = now() WHERE id = $1",
                       anchor_id)


async def video_anchor(pool: asyncpg.Pool, shop: Shop, *, product: int = 0, duration_s: float = 30.0,
                       plan_id: int | None = None, status: str = "active") -> tuple[int, str, int]:
    """(anchor id, code, video id) of a new anchor on a new video of the shop's seller."""
    assert shop.seller.account_id is not None
    video_id = await insert_video(pool, shop.seller.account_id, duration_s=duration_s)
    anchor_id, code = await insert_anchor(pool, product_id=shop.product_ids[product],
                                          publisher_id=shop.seller.account_id, video_id=video_id,
                                          plan_id=plan_id, status=status)
    return anchor_id, code, video_id


# ---- reading the streams -------------------------------------------------------------------

Entries = list[tuple[bytes, dict[bytes, bytes]]]


async def xrange(redis: AnyRedis, key: str) -> Entries:
    """Every entry of the stream `key`, as a client that does not decode responses returns them
    (redis-py types XRANGE for every client configuration)."""
    return cast(Entries, await redis.xrange(key))


async def stream_entries(redis: Redis, shards: int = 4) -> list[tuple[str, dict[str, Any]]]:
    """(stream key, event) for every entry of shoplink:clicks:{0..shards-1}; each entry must
    have exactly the one field `e`."""
    out = []
    for shard in range(shards):
        key = f"shoplink:clicks:{{{shard}}}"
        for _id, fields in await xrange(redis, key):
            assert list(fields) == [b"e"], fields
            out.append((key, orjson.loads(fields[b"e"])))
    return out


async def stream_events(redis: Redis, shards: int = 4) -> list[dict[str, Any]]:
    """Every event in the click streams, decoded."""
    return [event for _, event in await stream_entries(redis, shards)]


async def wait_for_events(redis: Redis, count: int, *, timeout: float = 10.0,
                          shards: int = 4) -> list[dict[str, Any]]:
    """Every event in the streams, once there are at least `count` (flushes are asynchronous)."""
    async def enough() -> tuple[list[dict[str, Any]]] | None:
        events = await stream_events(redis, shards)
        return (events,) if len(events) >= count else None

    found: tuple[list[dict[str, Any]]] = await until(enough, timeout=timeout, interval=0.02,
                                                      what=f"{count} events in the click streams")
    return found[0]


def random_code() -> str:
    return "Zz" + secrets.token_hex(4)
