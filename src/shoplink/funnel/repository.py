"""The funnel's SQL: which videos and live sessions exist (read only; owned by videos and live)."""

from __future__ import annotations

from collections.abc import Sequence

from shoplink.db import Conn
from shoplink.funnel.models import Surface


async def videos(con: Conn, ids: Sequence[int]) -> list[Surface]:
    rows = await con.fetch("SELECT id, owner_id, duration_s FROM videos WHERE id = ANY($1::bigint[]) "
                           "AND status = 'active'", list(ids))
    return [Surface("video", r["id"], r["owner_id"], float(r["duration_s"]), None) for r in rows]


async def live_sessions(con: Conn, ids: Sequence[int]) -> list[Surface]:
    rows = await con.fetch("SELECT id, owner_id, extract(epoch FROM started_at)::float8 AS started "
                           "FROM live_sessions WHERE id = ANY($1::bigint[])", list(ids))
    return [Surface("live", r["id"], r["owner_id"], None, r["started"]) for r in rows]
