"""SQL for shops, shop domains and products."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from shoplink.catalog.models import Product, Shop
from shoplink.db import Conn

_PRODUCT_COLUMNS = """p.id, p.shop_id, s.owner_id, p.title, p.url, p.price_minor, p.currency,
                      p.image_url, p.sku, p.status, p.created_at, p.updated_at"""


def _product(row: asyncpg.Record) -> Product:
    return Product(**{k: row[k] for k in Product.__dataclass_fields__})


def _shop(row: asyncpg.Record) -> Shop:
    """The shop without its domains (the domains package owns them; the service adds them)."""
    return Shop(id=row["id"], owner_id=row["owner_id"], name=row["name"],
                fallback_url=row["fallback_url"], created_at=row["created_at"],
                updated_at=row["updated_at"])


async def insert_shop(con: Conn, owner_id: int, name: str,
                      fallback_url: str | None) -> int:
    shop_id: int = await con.fetchval(
        "INSERT INTO shops (owner_id, name, fallback_url) VALUES ($1, $2, $3) RETURNING id",
        owner_id, name, fallback_url)
    return shop_id


async def get_shop(con: Conn, shop_id: int, *, for_update: bool = False) -> Shop | None:
    """The shop row (its `domains` empty)."""
    lock = " FOR UPDATE" if for_update else ""
    row = await con.fetchrow(f"SELECT * FROM shops WHERE id = $1{lock}", shop_id)
    return _shop(row) if row is not None else None


async def list_shops(con: Conn, owner_id: int | None, limit: int,
                     after_id: int) -> list[Shop]:
    rows = await con.fetch(
        """SELECT * FROM shops WHERE ($1::bigint IS NULL OR owner_id = $1) AND id > $2
            ORDER BY id LIMIT $3""", owner_id, after_id, limit)
    return [_shop(r) for r in rows]


async def update_shop(con: Conn, shop_id: int, changes: dict[str, Any]) -> None:
    if not changes:
        return
    columns = list(changes)
    assignments = ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(columns))
    await con.execute(f"UPDATE shops SET {assignments}, updated_at = now() WHERE id = $1",
                      shop_id, *[changes[c] for c in columns])


async def insert_products(con: Conn, shop_id: int,
                          rows: Sequence[dict[str, Any]]) -> list[int]:
    ids = await con.fetch(
        """INSERT INTO products (shop_id, title, url, price_minor, currency, image_url, sku)
           SELECT $1, r.title, r.url, r.price_minor, r.currency, r.image_url, r.sku
             FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[])
                  WITH ORDINALITY AS r(title, url, price_minor, currency, image_url, sku, n)
            ORDER BY r.n
           RETURNING id""",
        shop_id, [r["title"] for r in rows], [r["url"] for r in rows],
        [r.get("price_minor") for r in rows], [r.get("currency") for r in rows],
        [r.get("image_url") for r in rows], [r.get("sku") for r in rows])
    return [r["id"] for r in ids]


async def existing_skus(con: Conn, shop_id: int, skus: list[str]) -> set[str]:
    rows = await con.fetch(
        "SELECT sku FROM products WHERE shop_id = $1 AND sku = ANY($2::text[])", shop_id, skus)
    return {r["sku"] for r in rows}


async def get_product(con: Conn, product_id: int) -> Product | None:
    row = await con.fetchrow(
        f"SELECT {_PRODUCT_COLUMNS} FROM products p JOIN shops s ON s.id = p.shop_id WHERE p.id = $1",
        product_id)
    return _product(row) if row else None


async def get_products(con: Conn, product_ids: list[int]) -> list[Product]:
    rows = await con.fetch(
        f"""SELECT {_PRODUCT_COLUMNS} FROM products p JOIN shops s ON s.id = p.shop_id
             WHERE p.id = ANY($1::bigint[]) ORDER BY p.id""", product_ids)
    return [_product(r) for r in rows]


async def list_products(con: Conn, *, shop_id: int | None, owner_id: int | None,
                        status: str | None, search: str | None, limit: int,
                        after_id: int) -> list[Product]:
    rows = await con.fetch(
        f"""SELECT {_PRODUCT_COLUMNS} FROM products p JOIN shops s ON s.id = p.shop_id
             WHERE ($1::bigint IS NULL OR p.shop_id = $1)
               AND ($2::bigint IS NULL OR s.owner_id = $2)
               AND ($3::text IS NULL OR p.status = $3)
               AND ($4::text IS NULL OR p.title ILIKE '%' || $4 || '%' OR p.sku = $4)
               AND p.id > $5
             ORDER BY p.id LIMIT $6""",
        shop_id, owner_id, status, search, after_id, limit)
    return [_product(r) for r in rows]


async def update_product(con: Conn, product_id: int, changes: dict[str, Any]) -> None:
    columns = list(changes)
    assignments = "".join(f"{c} = ${i + 2}, " for i, c in enumerate(columns))
    await con.execute(
        f"""UPDATE products SET {assignments}updated_at = now(),
                   delisted_at = CASE WHEN status = 'delisted' THEN coalesce(delisted_at, now()) END
             WHERE id = $1""",
        product_id, *[changes[c] for c in columns])


async def active_product_urls(con: Conn, shop_id: int) -> list[asyncpg.Record]:
    return await con.fetch(
        "SELECT id, url FROM products WHERE shop_id = $1 AND status = 'active'", shop_id)
