"""All SQL of click analytics: roll-up writes, history reads, and the ownership look-ups of
the stats API (catalog, videos, live sessions and anchors tables, read only)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import asyncpg

from shoplink.analytics.keys import PAIRS
from shoplink.db import Conn

COUNT_COLUMNS: tuple[str, ...] = tuple(f"{c}_{o}" for c, o in PAIRS)
_N = len(COUNT_COLUMNS)

# One row to add: (kind, entity_id, granularity, bucket_start_s, 12 counts in COUNT_COLUMNS order).
CountRow = tuple[str, int, str, int, Sequence[int]]

_ADD_COUNTS = f"""
INSERT INTO click_counts AS c (entity_kind, entity_id, granularity, bucket, {", ".join(COUNT_COLUMNS)})
SELECT k, i, g, to_timestamp(b), {", ".join(f"v{j}" for j in range(_N))}
FROM unnest($1::text[], $2::bigint[], $3::text[], $4::bigint[],
            {", ".join(f"${j + 5}::bigint[]" for j in range(_N))})
     AS u(k, i, g, b, {", ".join(f"v{j}" for j in range(_N))})
ON CONFLICT (entity_kind, entity_id, granularity, bucket) DO UPDATE SET
{", ".join(f"{c} = c.{c} + EXCLUDED.{c}" for c in COUNT_COLUMNS)}
"""

# One combo row to add: (7 entity ids in keys.ENTITY_KINDS order, None where absent, granularity,
# bucket_start_s, 12 counts). PostgreSQL adds it to each of its entities (set-based: cheaper than
# expanding in Python), in a fixed order so that concurrent roll-ups lock rows in the same order.
ComboRow = tuple[Sequence[int | None], str, int, Sequence[int]]

_ADD_COMBO_COUNTS = f"""
INSERT INTO click_counts AS c (entity_kind, entity_id, granularity, bucket, {", ".join(COUNT_COLUMNS)})
SELECT e.kind, e.id, u.g, to_timestamp(u.b), {", ".join(f"sum(u.v{j})" for j in range(_N))}
FROM unnest({", ".join(f"${j + 1}::bigint[]" for j in range(7))}, $8::text[], $9::bigint[],
            {", ".join(f"${j + 10}::bigint[]" for j in range(_N))})
     AS u(a, v, l, p, s, c, n, g, b, {", ".join(f"v{j}" for j in range(_N))})
CROSS JOIN LATERAL (VALUES ('anchor', u.a), ('video', u.v), ('live', u.l), ('product', u.p),
                           ('shop', u.s), ('creator', u.c), ('plan', u.n)) AS e(kind, id)
WHERE e.id IS NOT NULL
GROUP BY e.kind, e.id, u.g, u.b
ORDER BY e.kind, e.id, u.g, u.b
ON CONFLICT (entity_kind, entity_id, granularity, bucket) DO UPDATE SET
{", ".join(f"{c} = c.{c} + EXCLUDED.{c}" for c in COUNT_COLUMNS)}
"""


# ---- roll-up ------------------------------------------------------------------------------

async def shard_seqs(con: Conn) -> dict[int, int]:
    rows = await con.fetch("SELECT shard, last_seq FROM click_rollup_shards")
    return {r["shard"]: r["last_seq"] for r in rows}


async def lock_shard(con: Conn, shard: int) -> int:
    """Lock the shard's roll-up row (in a transaction) and return its last applied move."""
    await con.execute("INSERT INTO click_rollup_shards (shard) VALUES ($1) ON CONFLICT DO NOTHING", shard)
    seq: int = await con.fetchval(
        "SELECT last_seq FROM click_rollup_shards WHERE shard = $1 FOR UPDATE", shard)
    return seq


async def set_shard_seq(con: Conn, shard: int, seq: int) -> None:
    await con.execute("UPDATE click_rollup_shards SET last_seq = $2, moved_at = now() WHERE shard = $1",
                      shard, seq)


async def add_counts(con: Conn, rows: Sequence[CountRow]) -> None:
    if not rows:
        return
    columns: list[list[int]] = [[r[4][j] for r in rows] for j in range(_N)]
    await con.execute(_ADD_COUNTS, [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
                      [r[3] for r in rows], *columns)


async def add_combo_counts(con: Conn, rows: Sequence[ComboRow]) -> None:
    """Add each combo row's counts to every entity of the combo."""
    if not rows:
        return
    ids = [[r[0][j] for r in rows] for j in range(7)]
    columns: list[list[int]] = [[r[3][j] for r in rows] for j in range(_N)]
    await con.execute(_ADD_COMBO_COUNTS, *ids, [r[1] for r in rows], [r[2] for r in rows], *columns)


async def add_heatmap(con: Conn, rows: Sequence[tuple[int, int, int]]) -> None:
    if rows:
        await con.execute(
            """INSERT INTO click_heatmap AS h (video_id, second, clicks)
               SELECT * FROM unnest($1::bigint[], $2::int[], $3::bigint[])
               ON CONFLICT (video_id, second) DO UPDATE SET clicks = h.clicks + EXCLUDED.clicks""",
            [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


async def add_viewmap(con: Conn, rows: Sequence[tuple[int, int, int]]) -> None:
    """Add human impressions per playback second (the view map) to the heatmap rows."""
    if rows:
        await con.execute(
            """INSERT INTO click_heatmap AS h (video_id, second, impressions)
               SELECT * FROM unnest($1::bigint[], $2::int[], $3::bigint[])
               ON CONFLICT (video_id, second) DO UPDATE SET impressions = h.impressions + EXCLUDED.impressions""",
            [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


async def add_top(con: Conn, rows: Sequence[tuple[str, int, int, int, int]]) -> None:
    """Add (parent kind, parent id, child id, human clicks, human impressions)."""
    if rows:
        await con.execute(
            """INSERT INTO click_top AS t (parent_kind, parent_id, child_id, clicks, impressions)
               SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[])
               ON CONFLICT (parent_kind, parent_id, child_id)
               DO UPDATE SET clicks = t.clicks + EXCLUDED.clicks,
                             impressions = t.impressions + EXCLUDED.impressions""",
            [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
            [r[4] for r in rows])


async def lock_uniques(con: Conn, wanted: Iterable[tuple[str, int, int, str]]
                       ) -> dict[tuple[str, int, int, str], bytes]:
    """Lock (in a transaction) the HyperLogLog rows of (kind, id, day_s, measure); existing ones
    returned. measure: click or impression."""
    items = sorted(set(wanted))
    if not items:
        return {}
    rows = await con.fetch(
        """SELECT entity_kind, entity_id, extract(epoch FROM day)::bigint AS day_s, measure, hll
           FROM click_uniques
           WHERE (entity_kind, entity_id, day, measure) IN
                 (SELECT k, i, to_timestamp(d), m
                  FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[]) AS u(k, i, d, m))
           ORDER BY 1, 2, 3, 4 FOR UPDATE""",
        [i[0] for i in items], [i[1] for i in items], [i[2] for i in items], [i[3] for i in items])
    return {(r["entity_kind"], r["entity_id"], r["day_s"], r["measure"]): r["hll"] for r in rows}


async def put_uniques(con: Conn, rows: Sequence[tuple[str, int, int, str, bytes, int]]) -> None:
    """Set (absolute) the union HyperLogLog and its count of (kind, id, day_s, measure)."""
    if rows:
        await con.execute(
            """INSERT INTO click_uniques AS u (entity_kind, entity_id, day, measure, hll, viewers)
               SELECT k, i, to_timestamp(d), m, h, v
               FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::bytea[], $6::bigint[])
                    AS x(k, i, d, m, h, v)
               ON CONFLICT (entity_kind, entity_id, day, measure) DO UPDATE SET hll = EXCLUDED.hll,
                                                                              viewers = EXCLUDED.viewers""",
            [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows],
            [r[4] for r in rows], [r[5] for r in rows])


async def prune(con: Conn, granularity: str, before: datetime) -> int:
    result: str = await con.execute(
        "DELETE FROM click_counts WHERE granularity = $1 AND bucket < $2", granularity, before)
    removed = int(result.split()[-1])
    if granularity == "day":  # unique viewers of clicks and of impressions
        result = await con.execute("DELETE FROM click_uniques WHERE day < $1", before)
        removed += int(result.split()[-1])
    return removed


# ---- history reads ------------------------------------------------------------------------

async def fetch_counts(con: Conn, kind: str, entity_id: int, granularity: str,
                       start: datetime, end: datetime) -> list[tuple[int, list[int]]]:
    rows = await con.fetch(
        f"""SELECT extract(epoch FROM bucket)::bigint AS b, {", ".join(COUNT_COLUMNS)}
            FROM click_counts
            WHERE entity_kind = $1 AND entity_id = $2 AND granularity = $3
              AND bucket >= $4 AND bucket < $5""",
        kind, entity_id, granularity, start, end)
    out = []
    for r in rows:  # a Record iterates its values: bucket, then the counts in COUNT_COLUMNS order
        values = list(r)
        out.append((values[0], values[1:]))
    return out


async def fetch_uniques(con: Conn, kind: str, entity_id: int, start: datetime,
                        end: datetime, measure: str = "click") -> list[tuple[int, bytes, int]]:
    rows = await con.fetch(
        """SELECT extract(epoch FROM day)::bigint AS d, hll, viewers FROM click_uniques
           WHERE entity_kind = $1 AND entity_id = $2 AND day >= $3 AND day < $4 AND measure = $5""",
        kind, entity_id, start, end, measure)
    return [(r["d"], r["hll"], r["viewers"]) for r in rows]


async def fetch_heatmap(con: Conn, video_id: int, column: str = "clicks") -> dict[int, int]:
    """second -> human clicks (`column` "clicks") or human impressions ("impressions")."""
    sql = {"clicks": "SELECT second, clicks AS n FROM click_heatmap WHERE video_id = $1 AND clicks > 0",
           "impressions": "SELECT second, impressions AS n FROM click_heatmap "
                          "WHERE video_id = $1 AND impressions > 0"}[column]
    rows = await con.fetch(sql, video_id)
    return {r["second"]: r["n"] for r in rows}


async def fetch_top(con: Conn, parent_kind: str, parent_id: int) -> dict[int, tuple[int, int]]:
    """child id -> (human clicks, human impressions)."""
    rows = await con.fetch("SELECT child_id, clicks, impressions FROM click_top "
                           "WHERE parent_kind = $1 AND parent_id = $2", parent_kind, parent_id)
    return {r["child_id"]: (r["clicks"], r["impressions"]) for r in rows}


# ---- ownership (read only) ----------------------------------------------------------------

async def video_owner(con: Conn, video_id: int) -> int | None:
    owner: int | None = await con.fetchval("SELECT owner_id FROM videos WHERE id = $1", video_id)
    return owner


async def live_owner(con: Conn, live_id: int) -> int | None:
    owner: int | None = await con.fetchval("SELECT owner_id FROM live_sessions WHERE id = $1", live_id)
    return owner


async def anchor_owners(con: Conn, anchor_id: int) -> tuple[int, int] | None:
    """(publisher, owner of the video or live session it is on)."""
    row: asyncpg.Record | None = await con.fetchrow(
        """SELECT a.publisher_id, coalesce(v.owner_id, l.owner_id) AS surface_owner
           FROM anchors a LEFT JOIN videos v ON v.id = a.video_id
                          LEFT JOIN live_sessions l ON l.id = a.live_session_id
           WHERE a.id = $1""", anchor_id)
    return None if row is None else (row["publisher_id"], row["surface_owner"])


async def product_owner(con: Conn, product_id: int) -> int | None:
    owner: int | None = await con.fetchval(
        "SELECT s.owner_id FROM products p JOIN shops s ON s.id = p.shop_id WHERE p.id = $1", product_id)
    return owner


async def shop_owner(con: Conn, shop_id: int) -> int | None:
    owner: int | None = await con.fetchval("SELECT owner_id FROM shops WHERE id = $1", shop_id)
    return owner


async def account_exists(con: Conn, account_id: int) -> bool:
    found: bool = await con.fetchval("SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1)", account_id)
    return found


async def entities_between(con: Conn, start: datetime, end: datetime) -> list[tuple[str, int]]:
    """Entities with day history in [start, end) (used by the rebuild comparison)."""
    rows = await con.fetch(
        """SELECT DISTINCT entity_kind, entity_id FROM click_counts
           WHERE granularity = 'day' AND bucket >= $1 AND bucket < $2""", start, end)
    return [(r["entity_kind"], r["entity_id"]) for r in rows]
