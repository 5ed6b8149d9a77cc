"""Catalog rows the stats API checks ownership against (shops, products, videos, live sessions,
anchors), inserted directly: the videos/anchors services live on other branches."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True)
class Seed:
    seller_id: int
    creator_id: int
    shop_id: int
    product_ids: tuple[int, ...]
    video_id: int
    live_id: int
    video_anchor_ids: tuple[int, ...]
    live_anchor_id: int


async def seed(pool: asyncpg.Pool, seller_id: int, creator_id: int, products: int = 2,
               tag: str = "a") -> Seed:
    async with pool.acquire() as con:
        shop_id = await con.fetchval(
            "INSERT INTO shops (owner_id, name) VALUES ($1, $2) RETURNING id", seller_id, f"shop-{tag}")
        product_ids = tuple([await con.fetchval(
            "INSERT INTO products (shop_id, title, url) VALUES ($1, $2, $3) RETURNING id",
            shop_id, f"product {i}", f"https://shop.example/p/{i}") for i in range(products)])
        video_id = await con.fetchval(
            """INSERT INTO videos (owner_id, title, file_path, size_bytes, duration_s, fps, frame_count,
                                   width, height, codec)
               VALUES ($1, 'clip', '/tmp/clip.mp4', 1000, 60, 30, 1800, 640, 360, 'h264') RETURNING id""",
            creator_id)
        live_id = await con.fetchval(
            "INSERT INTO live_sessions (owner_id, title, status) VALUES ($1, 'live', 'live') RETURNING id",
            creator_id)
        anchors = []
        for i, product_id in enumerate(product_ids):
            anchors.append(await con.fetchval(
                """INSERT INTO anchors (code, surface, video_id, product_id, publisher_id, start_s, end_s)
                   VALUES ($1, 'video', $2, $3, $4, $5, $6) RETURNING id""",
                f"v{tag}code{i:03d}", video_id, product_id, creator_id, float(i * 10), float(i * 10 + 8)))
        live_anchor = await con.fetchval(
            """INSERT INTO anchors (code, surface, live_session_id, product_id, publisher_id)
               VALUES ($1, 'live', $2, $3, $4) RETURNING id""",
            f"l{tag}code000", live_id, product_ids[0], creator_id)
    return Seed(seller_id, creator_id, shop_id, product_ids, video_id, live_id, tuple(anchors), live_anchor)
