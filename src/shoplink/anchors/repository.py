"""SQL for anchors, the only module that writes the anchors table (video and live surfaces), and
the row lock on their video that serializes the per-video limit."""

from __future__ import annotations

from typing import Any

import asyncpg

from shoplink.anchors.models import Anchor
from shoplink.db import Conn

_COLUMNS = """id, code, surface, video_id, live_session_id, product_id, publisher_id, plan_id,
              start_s, end_s, thumbnail_s, label, position, thumbnail_path, status, created_at,
              updated_at, archived_at"""
UPDATABLE = frozenset({"product_id", "plan_id", "start_s", "end_s", "thumbnail_s", "label",
                       "position", "thumbnail_path"})


def _anchor(row: asyncpg.Record) -> Anchor:
    return Anchor(**{k: row[k] for k in Anchor.__dataclass_fields__})


async def lock_video(con: Conn, video_id: int) -> bool:
    """Lock the (active) video row for this transaction: anchor counts cannot race, nor a delete."""
    found = await con.fetchval(
        "SELECT true FROM videos WHERE id = $1 AND status = 'active' FOR UPDATE", video_id)
    return bool(found)


async def count_active_for_video(con: Conn, video_id: int) -> int:
    count: int = await con.fetchval(
        "SELECT count(*) FROM anchors WHERE video_id = $1 AND status = 'active'", video_id)
    return count


async def insert_video_anchor(con: Conn, code: str, *, video_id: int, product_id: int,
                              publisher_id: int, plan_id: int | None, start_s: float, end_s: float,
                              thumbnail_s: float | None, label: str | None = None,
                              position: dict[str, float] | None = None,
                              thumbnail_path: str | None = None) -> Anchor:
    """Raises asyncpg.UniqueViolationError when `code` is taken (codes.with_new_code retries)."""
    row = await con.fetchrow(
        f"""INSERT INTO anchors (code, surface, video_id, product_id, publisher_id, plan_id, start_s,
                                 end_s, thumbnail_s, label, position, thumbnail_path)
            VALUES ($1, 'video', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
            RETURNING {_COLUMNS}""",
        code, video_id, product_id, publisher_id, plan_id, start_s, end_s, thumbnail_s, label,
        position, thumbnail_path)
    assert row is not None
    return _anchor(row)


async def insert_live_anchor(con: Conn, code: str, *, session_id: int, product_id: int,
                             publisher_id: int, plan_id: int | None) -> int | None:
    """A live session's anchor for a product (its product set); None when the product is already
    in the set. Raises asyncpg.UniqueViolationError when `code` is taken (codes.with_new_code
    retries)."""
    anchor_id: int | None = await con.fetchval(
        """INSERT INTO anchors (code, surface, live_session_id, product_id, publisher_id, plan_id)
           VALUES ($1, 'live', $2, $3, $4, $5)
           ON CONFLICT (live_session_id, product_id) WHERE surface = 'live' AND status = 'active'
           DO NOTHING RETURNING id""", code, session_id, product_id, publisher_id, plan_id)
    return anchor_id


async def get_anchor(con: Conn, anchor_id: int, *, for_update: bool = False) -> Anchor | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await con.fetchrow(f"SELECT {_COLUMNS} FROM anchors WHERE id = $1{lock}", anchor_id)
    return _anchor(row) if row else None


async def get_by_code(con: Conn, code: str) -> Anchor | None:
    row = await con.fetchrow(f"SELECT {_COLUMNS} FROM anchors WHERE code = $1", code)
    return _anchor(row) if row else None


async def list_for_video(con: Conn, video_id: int, status: str | None = "active") -> list[Anchor]:
    """Sorted by start (uses the partial index anchors_video_timeline for active ones)."""
    rows = await con.fetch(
        f"""SELECT {_COLUMNS} FROM anchors
             WHERE video_id = $1 AND ($2::text IS NULL OR status = $2)
             ORDER BY start_s, id""", video_id, status)
    return [_anchor(r) for r in rows]


async def update_anchor(con: Conn, anchor_id: int, changes: dict[str, Any]) -> Anchor:
    columns = [c for c in changes if c in UPDATABLE]
    assert len(columns) == len(changes), "unknown anchor column"
    assignments = "".join(f"{c} = ${i + 2}, " for i, c in enumerate(columns))
    row = await con.fetchrow(
        f"UPDATE anchors SET {assignments}updated_at = now() WHERE id = $1 RETURNING {_COLUMNS}",
        anchor_id, *[changes[c] for c in columns])
    assert row is not None
    return _anchor(row)


async def archive(con: Conn, anchor_id: int) -> Anchor:
    row = await con.fetchrow(
        f"""UPDATE anchors SET status = 'archived', archived_at = coalesce(archived_at, now()),
                   updated_at = now()
             WHERE id = $1 RETURNING {_COLUMNS}""", anchor_id)
    assert row is not None
    return _anchor(row)


async def archive_for_video(con: Conn, video_id: int) -> list[int]:
    rows = await con.fetch(
        """UPDATE anchors SET status = 'archived', archived_at = now(), updated_at = now()
            WHERE video_id = $1 AND status = 'active' RETURNING id""", video_id)
    return [r["id"] for r in rows]
