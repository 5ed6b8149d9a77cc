"""SQL for live sessions, pins and the pin timeline, and reads of a session's product set (its
live anchors, which only the anchors domain writes: AnchorService.add_live_anchors)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from shoplink.db import Conn
from shoplink.live.models import LiveEvent, LiveSession, LiveState, Pin, SetProduct
from shoplink.money import to_decimal_string

_SESSION_COLUMNS = """id, owner_id, title, planned_start_at, status, started_at, ended_at,
                      replay_video_id, last_seq, created_at, updated_at, stream_url"""


def _session(row: asyncpg.Record) -> LiveSession:
    return LiveSession(**{k: row[k] for k in LiveSession.__dataclass_fields__})


def _event(row: asyncpg.Record) -> LiveEvent:
    return LiveEvent(session_id=row["live_session_id"], seq=row["seq"], type=row["type"],
                     product_id=row["product_id"], offset_s=row["offset_s"], at=row["created_at"],
                     data=row["data"])


# ---- sessions --------------------------------------------------------------------------------

async def insert_session(con: Conn, owner_id: int, title: str, planned: datetime | None,
                         stream_url: str | None = None) -> int:
    session_id: int = await con.fetchval(
        "INSERT INTO live_sessions (owner_id, title, planned_start_at, stream_url) VALUES ($1, $2, $3, $4) "
        "RETURNING id", owner_id, title, planned, stream_url)
    return session_id


async def get_session(con: Conn, session_id: int, *, for_update: bool = False) -> LiveSession | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await con.fetchrow(f"SELECT {_SESSION_COLUMNS} FROM live_sessions WHERE id = $1{lock}",
                             session_id)
    return _session(row) if row else None


async def list_sessions(con: Conn, owner_id: int | None, status: str | None, limit: int,
                        after_id: int) -> list[LiveSession]:
    rows = await con.fetch(
        f"""SELECT {_SESSION_COLUMNS} FROM live_sessions
            WHERE ($1::bigint IS NULL OR owner_id = $1) AND ($2::text IS NULL OR status = $2)
              AND id > $3
            ORDER BY id LIMIT $4""", owner_id, status, after_id, limit)
    return [_session(r) for r in rows]


async def update_session(con: Conn, session_id: int, changes: dict[str, Any]) -> None:
    allowed = {"title", "planned_start_at", "stream_url"}
    assert set(changes) <= allowed
    if not changes:
        return
    sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(changes, start=2))
    await con.execute(f"UPDATE live_sessions SET {sets}, updated_at = now() WHERE id = $1",
                      session_id, *changes.values())


async def mark_started(con: Conn, session_id: int) -> None:
    await con.execute("UPDATE live_sessions SET status = 'live', started_at = now(), updated_at = now() "
                      "WHERE id = $1", session_id)


async def mark_ended(con: Conn, session_id: int) -> None:
    """Ends the live; what was pinned stays in the timeline (closed by the end event)."""
    await con.execute("UPDATE live_sessions SET status = 'ended', ended_at = now(), updated_at = now() "
                      "WHERE id = $1", session_id)
    await con.execute("DELETE FROM live_pins WHERE live_session_id = $1", session_id)


async def set_replay(con: Conn, session_id: int, video_id: int) -> None:
    await con.execute("UPDATE live_sessions SET replay_video_id = $2, updated_at = now() WHERE id = $1",
                      session_id, video_id)


# ---- the product set (live anchors) ----------------------------------------------------------

_SET_QUERY = """SELECT a.id AS anchor_id, a.code, a.product_id, a.plan_id, p.title, p.price_minor,
                       p.currency, p.image_url, p.status AS product_status
                FROM anchors a JOIN products p ON p.id = a.product_id
                WHERE a.live_session_id = $1 AND a.surface = 'live' AND a.status = 'active'"""


def _set_product(row: asyncpg.Record) -> SetProduct:
    price = (to_decimal_string(row["price_minor"], row["currency"])
             if row["price_minor"] is not None and row["currency"] else None)
    return SetProduct(anchor_id=row["anchor_id"], code=row["code"], product_id=row["product_id"],
                      plan_id=row["plan_id"], title=row["title"], price=price,
                      currency=row["currency"], image_url=row["image_url"],
                      product_status=row["product_status"])


async def set_products(con: Conn, session_id: int) -> list[SetProduct]:
    rows = await con.fetch(_SET_QUERY + " ORDER BY a.id", session_id)
    return [_set_product(r) for r in rows]


async def set_product(con: Conn, session_id: int, product_id: int) -> SetProduct | None:
    row = await con.fetchrow(_SET_QUERY + " AND a.product_id = $2", session_id, product_id)
    return _set_product(row) if row else None


async def set_product_ids(con: Conn, session_id: int) -> set[int]:
    rows = await con.fetch("SELECT product_id FROM anchors WHERE live_session_id = $1 "
                           "AND surface = 'live' AND status = 'active'", session_id)
    return {r["product_id"] for r in rows}


# ---- events and pins -------------------------------------------------------------------------

async def insert_event(con: Conn, session_id: int, type_: str, product_id: int | None,
                       data: dict[str, Any]) -> LiveEvent:
    """The session's next event (seq = last_seq + 1) with its offset from the live's start.

    Callers hold the session row lock (SELECT ... FOR UPDATE), so sequences have no gaps.
    """
    row = await con.fetchrow(
        """WITH s AS (UPDATE live_sessions SET last_seq = last_seq + 1, updated_at = now()
                      WHERE id = $1 RETURNING last_seq, started_at)
           INSERT INTO live_pin_events (live_session_id, seq, type, product_id, offset_s, data)
           SELECT $1, s.last_seq, $2, $3,
                  GREATEST(COALESCE(extract(epoch FROM now() - s.started_at)::float8, 0), 0), $4
           FROM s
           RETURNING live_session_id, seq, type, product_id, offset_s, data, created_at""",
        session_id, type_, product_id, data)
    assert row is not None
    return _event(row)


async def events_after(con: Conn, session_id: int, after_seq: int, upto_seq: int | None = None,
                       limit: int = 10_000) -> list[LiveEvent]:
    rows = await con.fetch(
        """SELECT * FROM live_pin_events WHERE live_session_id = $1 AND seq > $2
             AND ($3::integer IS NULL OR seq <= $3)
           ORDER BY seq LIMIT $4""", session_id, after_seq, upto_seq, limit)
    return [_event(r) for r in rows]


async def events_for(con: Conn, last_seqs: dict[int, int]) -> list[LiveEvent]:
    """Every event after the given sequence of each session, in (session, seq) order."""
    if not last_seqs:
        return []
    rows = await con.fetch(
        """SELECT e.* FROM live_pin_events e
           JOIN unnest($1::bigint[], $2::integer[]) AS w(id, last_seq)
             ON e.live_session_id = w.id AND e.seq > w.last_seq
           ORDER BY e.live_session_id, e.seq""", list(last_seqs), list(last_seqs.values()))
    return [_event(r) for r in rows]


async def timeline(con: Conn, session_id: int) -> list[LiveEvent]:
    return await events_after(con, session_id, 0, None, limit=1_000_000)


async def seconds_since(con: Conn, started_at: datetime) -> float:
    """Seconds from `started_at` to the transaction's now(), at least 0: a pin's offset in the live."""
    offset: float = await con.fetchval(
        "SELECT GREATEST(extract(epoch FROM now() - $1::timestamptz)::float8, 0)", started_at)
    return offset


async def count_pins(con: Conn, session_id: int) -> int:
    count: int = await con.fetchval("SELECT count(*) FROM live_pins WHERE live_session_id = $1",
                                    session_id)
    return count


async def get_pin(con: Conn, session_id: int, product_id: int) -> Pin | None:
    row = await con.fetchrow("SELECT product, sold_out FROM live_pins "
                             "WHERE live_session_id = $1 AND product_id = $2", session_id, product_id)
    return Pin.from_snapshot(row["product"], row["sold_out"]) if row else None


async def insert_pin(con: Conn, session_id: int, anchor_id: int, event: LiveEvent) -> None:
    await con.execute(
        """INSERT INTO live_pins (live_session_id, product_id, anchor_id, pin_seq, pinned_offset_s, product)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        session_id, event.product_id, anchor_id, event.seq, event.offset_s, event.data)


async def delete_pin(con: Conn, session_id: int, product_id: int) -> None:
    await con.execute("DELETE FROM live_pins WHERE live_session_id = $1 AND product_id = $2",
                      session_id, product_id)


async def set_sold_out(con: Conn, session_id: int, product_id: int, sold_out: bool) -> None:
    await con.execute("UPDATE live_pins SET sold_out = $3 WHERE live_session_id = $1 AND product_id = $2",
                      session_id, product_id, sold_out)


async def _state_rows(con: Conn, session_id: int) -> tuple[asyncpg.Record | None, list[asyncpg.Record]]:
    row = await con.fetchrow(f"SELECT {_SESSION_COLUMNS} FROM live_sessions WHERE id = $1", session_id)
    if row is None:
        return None, []
    pins = await con.fetch("SELECT product, sold_out FROM live_pins WHERE live_session_id = $1 "
                           "ORDER BY pin_seq", session_id)
    return row, pins


async def load_state(con: Conn, session_id: int) -> LiveState | None:
    """The viewer's state, consistent with its `seq` (both reads in one snapshot)."""
    if con.is_in_transaction():
        row, pins = await _state_rows(con, session_id)
    else:
        async with con.transaction(isolation="repeatable_read", readonly=True):
            row, pins = await _state_rows(con, session_id)
    if row is None:
        return None
    return LiveState(session_id=row["id"], title=row["title"], status=row["status"],
                     planned_start_at=row["planned_start_at"], started_at=row["started_at"],
                     ended_at=row["ended_at"], replay_video_id=row["replay_video_id"],
                     seq=row["last_seq"], stream_url=row["stream_url"],
                     pins=tuple(Pin.from_snapshot(p["product"], p["sold_out"]) for p in pins))
