"""SQL of the affiliate program: plans, rate history, enrolments, attributed clicks, conversions,
and the report aggregates."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from shoplink.affiliates.models import (
    AttributedClick,
    Conversion,
    Enrolment,
    Payout,
    Plan,
    PlanDetail,
    PlanProduct,
    RateChange,
)
from shoplink.db import Conn


def _plan(row: asyncpg.Record) -> Plan:
    return Plan(**{k: row[k] for k in Plan.__dataclass_fields__})


def _change(row: asyncpg.Record) -> RateChange:
    return RateChange(**{k: row[k] for k in RateChange.__dataclass_fields__})


def _enrolment(row: asyncpg.Record) -> Enrolment:
    return Enrolment(**{k: row[k] for k in Enrolment.__dataclass_fields__})


def _click(row: asyncpg.Record) -> AttributedClick:
    return AttributedClick(**{k: row[k] for k in AttributedClick.__dataclass_fields__})


def _conversion(row: asyncpg.Record) -> Conversion:
    values = {k: row[k] for k in Conversion.__dataclass_fields__}
    values["currency"] = values["currency"].strip()
    return Conversion(**values)


# ---- plans -----------------------------------------------------------------------------------

async def insert_plan(con: Conn, *, seller_id: int, name: str, kind: str, starts_at: datetime,
                      ends_at: datetime | None, now: datetime) -> int:
    plan_id: int = await con.fetchval(
        """INSERT INTO plans (seller_id, name, kind, starts_at, ends_at, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id""",
        seller_id, name, kind, starts_at, ends_at, now)
    return plan_id


async def add_plan_products(con: Conn, plan_id: int, product_ids: Sequence[int],
                            now: datetime) -> None:
    await con.execute(
        """INSERT INTO plan_products (plan_id, product_id, added_at)
           SELECT $1, unnest($2::bigint[]), $3 ON CONFLICT DO NOTHING""",
        plan_id, list(product_ids), now)


async def insert_rate_change(con: Conn, *, plan_id: int, product_id: int | None,
                             rate_bp: int | None, announced_at: datetime, effective_at: datetime,
                             changed_by: int | None) -> None:
    await con.execute(
        """INSERT INTO plan_rate_changes
               (plan_id, product_id, rate_bp, announced_at, effective_at, changed_by)
           VALUES ($1, $2, $3, $4, $5, $6)""",
        plan_id, product_id, rate_bp, announced_at, effective_at, changed_by)


async def get_plan(con: Conn, plan_id: int, *, for_update: bool = False) -> Plan | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await con.fetchrow(f"SELECT * FROM plans WHERE id = $1{lock}", plan_id)
    return _plan(row) if row else None


async def get_plan_details(con: Conn, plan_ids: Sequence[int]) -> list[PlanDetail]:
    """Plans with their products and whole rate history, in the order of `plan_ids`."""
    ids = list(plan_ids)
    plans = {r["id"]: _plan(r) for r in await con.fetch(
        "SELECT * FROM plans WHERE id = ANY($1::bigint[])", ids)}
    products: dict[int, list[PlanProduct]] = {}
    for r in await con.fetch(
            """SELECT pp.plan_id, p.id, p.shop_id, p.title FROM plan_products pp
                 JOIN products p ON p.id = pp.product_id
                WHERE pp.plan_id = ANY($1::bigint[]) ORDER BY pp.plan_id, p.id""", ids):
        products.setdefault(r["plan_id"], []).append(PlanProduct(r["id"], r["shop_id"], r["title"]))
    changes: dict[int, list[RateChange]] = {}
    for r in await con.fetch(
            """SELECT * FROM plan_rate_changes WHERE plan_id = ANY($1::bigint[])
                ORDER BY plan_id, announced_at, id""", ids):
        changes.setdefault(r["plan_id"], []).append(_change(r))
    return [PlanDetail(plans[i], tuple(products.get(i, ())), tuple(changes.get(i, ())))
            for i in ids if i in plans]


async def get_plan_detail(con: Conn, plan_id: int) -> PlanDetail | None:
    found = await get_plan_details(con, [plan_id])
    return found[0] if found else None


async def list_plan_ids(con: Conn, *, seller_id: int | None, limit: int, after_id: int) -> list[int]:
    rows = await con.fetch(
        """SELECT id FROM plans WHERE ($1::bigint IS NULL OR seller_id = $1) AND id > $2
            ORDER BY id LIMIT $3""", seller_id, after_id, limit)
    return [r["id"] for r in rows]


async def marketplace_plan_ids(con: Conn, *, now: datetime, shop_id: int | None,
                               product_id: int | None, limit: int, after_id: int) -> list[int]:
    """Open plans that have not ended, optionally carrying a shop's or one product's items."""
    rows = await con.fetch(
        """SELECT pl.id FROM plans pl
            WHERE pl.kind = 'open' AND pl.status <> 'ended'
              AND (pl.ends_at IS NULL OR pl.ends_at > $1) AND pl.id > $4
              AND ($2::bigint IS NULL OR EXISTS (
                    SELECT 1 FROM plan_products pp JOIN products p ON p.id = pp.product_id
                     WHERE pp.plan_id = pl.id AND p.shop_id = $2))
              AND ($3::bigint IS NULL OR EXISTS (
                    SELECT 1 FROM plan_products pp WHERE pp.plan_id = pl.id AND pp.product_id = $3))
            ORDER BY pl.id LIMIT $5""", now, shop_id, product_id, after_id, limit)
    return [r["id"] for r in rows]


async def update_plan(con: Conn, plan_id: int, changes: dict[str, Any], now: datetime) -> None:
    columns = list(changes)
    assignments = "".join(f"{c} = ${i + 3}, " for i, c in enumerate(columns))
    await con.execute(f"UPDATE plans SET {assignments}updated_at = $2 WHERE id = $1",
                      plan_id, now, *[changes[c] for c in columns])


async def plans_for_creator_product(con: Conn, creator_id: int, product_id: int,
                                    now: datetime) -> list[int]:
    """Active plans carrying the product in which the creator is enrolled (oldest first)."""
    rows = await con.fetch(
        """SELECT pl.id FROM plans pl
             JOIN plan_products pp ON pp.plan_id = pl.id AND pp.product_id = $2
             JOIN plan_enrolments e ON e.plan_id = pl.id AND e.creator_id = $1
            WHERE e.status = 'enrolled' AND pl.status = 'active' AND pl.starts_at <= $3
              AND (pl.ends_at IS NULL OR pl.ends_at > $3)
            ORDER BY pl.id""", creator_id, product_id, now)
    return [r["id"] for r in rows]


# ---- enrolments ------------------------------------------------------------------------------

async def get_enrolment(con: Conn, plan_id: int, creator_id: int,
                        *, for_update: bool = False) -> Enrolment | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await con.fetchrow(
        f"SELECT * FROM plan_enrolments WHERE plan_id = $1 AND creator_id = $2{lock}",
        plan_id, creator_id)
    return _enrolment(row) if row else None


async def save_enrolment(con: Conn, e: Enrolment) -> None:
    await con.execute(
        """INSERT INTO plan_enrolments
               (plan_id, creator_id, status, invited_at, joined_at, left_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (plan_id, creator_id) DO UPDATE SET
               status = EXCLUDED.status, invited_at = EXCLUDED.invited_at,
               joined_at = EXCLUDED.joined_at, left_at = EXCLUDED.left_at,
               updated_at = EXCLUDED.updated_at""",
        e.plan_id, e.creator_id, e.status, e.invited_at, e.joined_at, e.left_at, e.updated_at)


async def list_plan_enrolments(con: Conn, plan_id: int) -> list[Enrolment]:
    rows = await con.fetch(
        "SELECT * FROM plan_enrolments WHERE plan_id = $1 ORDER BY creator_id", plan_id)
    return [_enrolment(r) for r in rows]


async def list_creator_enrolments(con: Conn, creator_id: int,
                                  statuses: Sequence[str]) -> list[Enrolment]:
    rows = await con.fetch(
        """SELECT * FROM plan_enrolments WHERE creator_id = $1 AND status = ANY($2::text[])
            ORDER BY plan_id""", creator_id, list(statuses))
    return [_enrolment(r) for r in rows]


# ---- attributed clicks -----------------------------------------------------------------------

_CLICK_COLUMNS = tuple(AttributedClick.__dataclass_fields__)
_CLICK_TYPES = ("text", "timestamptz", "text", "text", "text", "bigint", "bigint", "bigint",
                "bigint", "bigint", "text", "text", "integer", "text")


async def insert_clicks(con: Conn, clicks: Sequence[AttributedClick]) -> int:
    """Insert many at once; a click already stored (same event id) is left as it is."""
    if not clicks:
        return 0
    arrays = [[getattr(c, col) for c in clicks] for col in _CLICK_COLUMNS]
    params = ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(_CLICK_TYPES))
    columns = ", ".join(_CLICK_COLUMNS)
    result: str = await con.execute(
        f"""INSERT INTO attributed_clicks ({columns})
            SELECT * FROM unnest({params})
            ON CONFLICT (event_id) DO NOTHING""", *arrays)
    return int(result.rsplit(" ", 1)[-1])


async def get_click(con: Conn, event_id: str) -> AttributedClick | None:
    row = await con.fetchrow("SELECT * FROM attributed_clicks WHERE event_id = $1", event_id)
    return _click(row) if row else None


async def count_clicks(con: Conn, event_ids: Sequence[str]) -> int:
    count: int = await con.fetchval(
        "SELECT count(*) FROM attributed_clicks WHERE event_id = ANY($1::text[])", list(event_ids))
    return count


async def last_qualifying_click(con: Conn, *, viewer: str, shop_id: int, since: datetime,
                                until: datetime) -> AttributedClick | None:
    """The viewer's latest human click with a commission on this shop's products in (since, until]."""
    row = await con.fetchrow(
        """SELECT * FROM attributed_clicks
            WHERE viewer = $1 AND shop_id = $2 AND ts > $3 AND ts <= $4
              AND ua_class = 'human' AND outcome = 'redirected' AND rate_bp IS NOT NULL
            ORDER BY ts DESC, event_id DESC LIMIT 1""", viewer, shop_id, since, until)
    return _click(row) if row else None


# ---- conversions -----------------------------------------------------------------------------

async def insert_conversion(con: Conn, values: dict[str, Any]) -> int | None:
    """The new id, or None when the shop already reported this order."""
    columns = list(values)
    placeholders = ", ".join(f"${i + 1}" for i in range(len(columns)))
    conversion_id: int | None = await con.fetchval(
        f"""INSERT INTO conversions ({", ".join(columns)}) VALUES ({placeholders})
            ON CONFLICT (shop_id, order_id) DO NOTHING RETURNING id""",
        *[values[c] for c in columns])
    return conversion_id


async def get_conversion(con: Conn, conversion_id: int, *,
                         for_update: bool = False) -> Conversion | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await con.fetchrow(f"SELECT * FROM conversions WHERE id = $1{lock}", conversion_id)
    return _conversion(row) if row else None


async def get_conversion_by_order(con: Conn, shop_id: int, order_id: str) -> Conversion | None:
    row = await con.fetchrow(
        "SELECT * FROM conversions WHERE shop_id = $1 AND order_id = $2", shop_id, order_id)
    return _conversion(row) if row else None


async def viewer_has_clicks(con: Conn, *, viewer: str, shop_id: int) -> bool:
    found: bool = await con.fetchval(
        "SELECT EXISTS (SELECT 1 FROM attributed_clicks WHERE viewer = $1 AND shop_id = $2)",
        viewer, shop_id)
    return found


async def update_conversion(con: Conn, conversion_id: int, values: dict[str, Any]) -> None:
    columns = list(values)
    assignments = ", ".join(f"{c} = ${i + 2}" for i, c in enumerate(columns))
    await con.execute(f"UPDATE conversions SET {assignments} WHERE id = $1",
                      conversion_id, *[values[c] for c in columns])


async def pending_for_clicks(con: Conn, click_ids: Sequence[str],
                             viewers: Sequence[str]) -> list[int]:
    """Sales waiting for their click that these clicks (by id, or by viewer) may settle."""
    rows = await con.fetch(
        """SELECT id FROM conversions WHERE reason = 'pending_attribution'
              AND (given_click_id = ANY($1::text[]) OR given_viewer = ANY($2::text[]))
            ORDER BY id""", list(click_ids), list(viewers))
    return [r["id"] for r in rows]


async def pending_ids(con: Conn, *, after_id: int, limit: int) -> list[int]:
    rows = await con.fetch(
        """SELECT id FROM conversions WHERE reason = 'pending_attribution' AND id > $1
            ORDER BY id LIMIT $2""", after_id, limit)
    return [r["id"] for r in rows]


async def get_refund_by_key(con: Conn, conversion_id: int, key: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await con.fetchrow(
        "SELECT * FROM conversion_refunds WHERE conversion_id = $1 AND refund_key = $2",
        conversion_id, key)
    return row


async def insert_refund(con: Conn, *, conversion_id: int, key: str | None, amount_minor: int,
                        at: datetime, by: int | None) -> None:
    await con.execute(
        """INSERT INTO conversion_refunds
               (conversion_id, refund_key, amount_minor, refunded_at, refunded_by)
           VALUES ($1, $2, $3, $4, $5)""", conversion_id, key, amount_minor, at, by)


async def insert_hold(con: Conn, *, conversion_id: int, action: str, reason: str, at: datetime,
                      by: int | None) -> None:
    await con.execute(
        """INSERT INTO conversion_holds (conversion_id, action, reason, at, by_account)
           VALUES ($1, $2, $3, $4, $5)""", conversion_id, action, reason, at, by)


async def list_conversions(con: Conn, *, shop_ids: Sequence[int] | None, creator_id: int | None,
                           plan_id: int | None, attribution: str | None, after_id: int,
                           limit: int) -> list[Conversion]:
    """A page of conversions, oldest first. Visible: those of `shop_ids` or credited to
    `creator_id` (both None: all); `plan_id` and `attribution` narrow further."""
    rows = await con.fetch(
        """SELECT * FROM conversions
            WHERE (($1::bigint[] IS NULL AND $2::bigint IS NULL)
                   OR shop_id = ANY($1::bigint[]) OR creator_id = $2)
              AND ($3::bigint IS NULL OR plan_id = $3)
              AND ($4::text IS NULL
                   OR ($4 = 'attributed' AND click_id IS NOT NULL)
                   OR ($4 = 'pending' AND reason = 'pending_attribution')
                   OR ($4 = 'unattributed' AND click_id IS NULL
                       AND reason <> 'pending_attribution'))
              AND id > $5
            ORDER BY id LIMIT $6""",
        None if shop_ids is None else list(shop_ids), creator_id, plan_id, attribution, after_id,
        limit)
    return [_conversion(r) for r in rows]


async def list_conversions_of_payout(con: Conn, payout_id: int) -> list[Conversion]:
    rows = await con.fetch("SELECT * FROM conversions WHERE payout_id = $1 ORDER BY id", payout_id)
    return [_conversion(r) for r in rows]


# ---- settlement ------------------------------------------------------------------------------

# The money of one conversion, as SQL over `conversions v` (the stats read these too):
NET_AMOUNT_SQL = "(v.amount_minor - v.refunded_minor)"
NET_COMMISSION_SQL = "(v.commission_minor - v.commission_refunded_minor)"
COUNTS_AS_ORDER_SQL = "(v.click_id IS NOT NULL AND v.status = 'confirmed')"


def settlement_state_sql(now: str, window: str) -> str:
    """models.Conversion.settlement_state in SQL, for attributed rows; `now` a timestamptz and
    `window` an interval expression (placeholders)."""
    return (f"""(CASE WHEN v.payout_id IS NOT NULL THEN 'paid'
                     WHEN v.status = 'refunded' THEN 'refunded'
                     WHEN v.frozen_at IS NOT NULL THEN 'frozen'
                     WHEN v.occurred_at + {window} > {now} THEN 'pending'
                     ELSE 'payable' END)""")


def _payout(row: asyncpg.Record) -> Payout:
    values = {k: row[k] for k in Payout.__dataclass_fields__}
    values["currency"] = values["currency"].strip()
    return Payout(**values)


async def lock_payable(con: Conn, *, seller_id: int, creator_id: int, currency: str,
                       due_before: datetime) -> list[tuple[int, int]]:
    """(conversion id, commission owed) of what the seller owes the creator now, locked."""
    rows = await con.fetch(
        f"""SELECT v.id, {NET_COMMISSION_SQL} AS owed FROM conversions v
              JOIN plans pl ON pl.id = v.plan_id
             WHERE pl.seller_id = $1 AND v.creator_id = $2 AND v.currency = $3
               AND v.click_id IS NOT NULL AND v.payout_id IS NULL AND v.frozen_at IS NULL
               AND v.status = 'confirmed' AND v.occurred_at <= $4
             ORDER BY v.id FOR UPDATE OF v""", seller_id, creator_id, currency, due_before)
    return [(r["id"], r["owed"]) for r in rows]


async def insert_payout(con: Conn, *, seller_id: int, creator_id: int, currency: str,
                        amount_minor: int, conversions: int, reference: str, paid_at: datetime,
                        recorded_by: int | None) -> int | None:
    """The new id, or None when the seller already recorded a payout with this reference."""
    payout_id: int | None = await con.fetchval(
        """INSERT INTO payouts (seller_id, creator_id, currency, amount_minor, conversions,
                                reference, paid_at, recorded_by)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (seller_id, reference) DO NOTHING RETURNING id""",
        seller_id, creator_id, currency, amount_minor, conversions, reference, paid_at, recorded_by)
    return payout_id


async def mark_paid(con: Conn, conversion_ids: Sequence[int], payout_id: int) -> None:
    await con.execute(
        "UPDATE conversions SET payout_id = $2 WHERE id = ANY($1::bigint[]) AND payout_id IS NULL",
        list(conversion_ids), payout_id)


async def get_payout(con: Conn, payout_id: int) -> Payout | None:
    row = await con.fetchrow("SELECT * FROM payouts WHERE id = $1", payout_id)
    return _payout(row) if row else None


async def get_payout_by_reference(con: Conn, seller_id: int, reference: str) -> Payout | None:
    row = await con.fetchrow("SELECT * FROM payouts WHERE seller_id = $1 AND reference = $2",
                             seller_id, reference)
    return _payout(row) if row else None


async def list_payouts(con: Conn, *, seller_id: int | None, creator_id: int | None,
                       start: datetime, end: datetime) -> list[Payout]:
    rows = await con.fetch(
        """SELECT * FROM payouts
            WHERE ($1::bigint IS NULL OR seller_id = $1) AND ($2::bigint IS NULL OR creator_id = $2)
              AND paid_at >= $3 AND paid_at < $4
            ORDER BY paid_at, id""", seller_id, creator_id, start, end)
    return [_payout(r) for r in rows]


async def payout_sum(con: Conn, payout_id: int) -> tuple[int, int]:
    """(conversions, commission owed) marked with this payout."""
    row = await con.fetchrow(
        f"""SELECT count(*) AS n, coalesce(sum({NET_COMMISSION_SQL}), 0)::bigint AS owed
              FROM conversions v WHERE v.payout_id = $1""", payout_id)
    assert row is not None
    return row["n"], row["owed"]


# ---- statements ------------------------------------------------------------------------------

async def earnings(con: Conn, *, creator_id: int | None, seller_id: int | None,
                   plan_id: int | None, start: datetime | None, end: datetime | None,
                   now: datetime, window: timedelta) -> list[asyncpg.Record]:
    """Attributed sales over [start, end) (occurred_at; None: unbounded) by (plan, creator,
    currency, settlement state): counts, gross and refunded amounts and commissions."""
    state = settlement_state_sql("$6", "$7::interval")
    return await con.fetch(
        f"""SELECT v.plan_id, v.creator_id, v.currency, {state} AS state,
                   count(*) AS sales,
                   coalesce(sum(v.amount_minor), 0)::bigint AS amount_minor,
                   coalesce(sum(v.refunded_minor), 0)::bigint AS refunded_minor,
                   coalesce(sum(v.commission_minor), 0)::bigint AS commission_minor,
                   coalesce(sum(v.commission_refunded_minor), 0)::bigint AS commission_refunded_minor
              FROM conversions v JOIN plans pl ON pl.id = v.plan_id
             WHERE v.click_id IS NOT NULL
               AND ($1::bigint IS NULL OR v.creator_id = $1)
               AND ($2::bigint IS NULL OR pl.seller_id = $2)
               AND ($3::bigint IS NULL OR v.plan_id = $3)
               AND ($4::timestamptz IS NULL OR v.occurred_at >= $4)
               AND ($5::timestamptz IS NULL OR v.occurred_at < $5)
             GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4""",
        creator_id, seller_id, plan_id, start, end, now, window)


# ---- reconciliation --------------------------------------------------------------------------

async def commission_by_plan(con: Conn) -> list[asyncpg.Record]:
    """Per (plan, currency): attributed sales, and their net amount and commission owed."""
    return await con.fetch(
        f"""SELECT v.plan_id, v.currency, count(*) AS sales,
                   sum({NET_AMOUNT_SQL})::bigint AS net_amount_minor,
                   sum({NET_COMMISSION_SQL})::bigint AS commission_owed_minor
              FROM conversions v WHERE v.click_id IS NOT NULL
             GROUP BY 1, 2 ORDER BY 1, 2""")


async def conversion_rows(con: Conn, *, after_id: int, limit: int) -> list[Conversion]:
    rows = await con.fetch("SELECT * FROM conversions WHERE id > $1 ORDER BY id LIMIT $2",
                           after_id, limit)
    return [_conversion(r) for r in rows]


async def refund_sums(con: Conn) -> dict[int, int]:
    rows = await con.fetch(
        "SELECT conversion_id, sum(amount_minor)::bigint AS s FROM conversion_refunds GROUP BY 1")
    return {r["conversion_id"]: r["s"] for r in rows}


async def payout_mismatches(con: Conn) -> list[asyncpg.Record]:
    """Payouts whose amount or count differs from the conversions marked with them."""
    return await con.fetch(
        f"""SELECT p.id, p.amount_minor, p.conversions,
                   coalesce(sum({NET_COMMISSION_SQL}), 0)::bigint AS marked_minor,
                   count(v.id) AS marked
              FROM payouts p LEFT JOIN conversions v ON v.payout_id = p.id
             GROUP BY p.id
            HAVING p.amount_minor <> coalesce(sum({NET_COMMISSION_SQL}), 0)
                OR p.conversions <> count(v.id)
                OR bool_or(v.currency <> p.currency OR v.creator_id <> p.creator_id)""")


# ---- reports ---------------------------------------------------------------------------------

_GROUP_COLUMN = {"plan": "plan_id", "creator": "creator_id"}


async def click_counts(con: Conn, *, group_by: str, start: datetime, end: datetime,
                       scope_account: int | None, plan_id: int | None,
                       creator_id: int | None) -> list[asyncpg.Record]:
    """(key, ua_class, clicks) over [start, end); scope_account limits to plans the account sells
    and clicks it earned (None: everything)."""
    key = _GROUP_COLUMN[group_by]
    return await con.fetch(
        f"""SELECT c.{key} AS key, c.ua_class, count(*) AS clicks
              FROM attributed_clicks c LEFT JOIN plans pl ON pl.id = c.plan_id
             WHERE c.ts >= $1 AND c.ts < $2
               AND ($3::bigint IS NULL OR pl.seller_id = $3 OR c.creator_id = $3)
               AND ($4::bigint IS NULL OR c.plan_id = $4)
               AND ($5::bigint IS NULL OR c.creator_id = $5)
             GROUP BY 1, 2 ORDER BY 1, 2""", start, end, scope_account, plan_id, creator_id)


async def conversion_sums(con: Conn, *, group_by: str, start: datetime, end: datetime,
                          scope_account: int | None, plan_id: int | None,
                          creator_id: int | None) -> list[asyncpg.Record]:
    """Attributed conversions over [start, end) by (key, currency): net of refunds."""
    key = _GROUP_COLUMN[group_by]
    return await con.fetch(
        f"""SELECT v.{key} AS key, v.currency,
                   count(*) FILTER (WHERE v.status = 'confirmed') AS conversions,
                   count(*) FILTER (WHERE v.status = 'refunded') AS refunded,
                   coalesce(sum({NET_AMOUNT_SQL}), 0)::bigint AS sales_minor,
                   coalesce(sum({NET_COMMISSION_SQL}), 0)::bigint AS commission_minor
              FROM conversions v LEFT JOIN plans pl ON pl.id = v.plan_id
             WHERE v.click_id IS NOT NULL AND v.occurred_at >= $1 AND v.occurred_at < $2
               AND ($3::bigint IS NULL OR pl.seller_id = $3 OR v.creator_id = $3)
               AND ($4::bigint IS NULL OR v.plan_id = $4)
               AND ($5::bigint IS NULL OR v.creator_id = $5)
             GROUP BY 1, 2 ORDER BY 1, 2""", start, end, scope_account, plan_id, creator_id)


# ---- sales in the stats API (the funnel's orders, GMV and commission) --------------------------

# How a conversion belongs to each kind of entity: its own columns, or (anchor, video, live) the
# anchor of the click it was credited to.
_SALES_ENTITY = {"plan": "v.plan_id", "creator": "v.creator_id", "product": "v.product_id",
                 "shop": "v.shop_id", "anchor": "c.anchor_id", "video": "a.video_id",
                 "live": "a.live_session_id"}


async def sales_totals(con: Conn, kind: str, entity_id: int, start: datetime,
                       end: datetime) -> list[asyncpg.Record]:
    """Orders, GMV and commission of one entity per currency: (currency, orders, gmv_minor,
    commission_minor) over conversions that occurred in [start, end).

    Counted: `confirmed` conversions (wholly refunded ones are not), net of partial refunds
    (NET_AMOUNT_SQL, NET_COMMISSION_SQL). Which ones belong to the entity:
    - plan, creator, anchor, video, live: conversions credited to a click (`click_id`), through
      that click's anchor for anchor / video / live;
    - shop, product: conversions the shop reported with a shoplink click id (`given_click_id`),
      credited to a plan or not: sales of a seller's own products reported the same way count.
    The one query of the stats API's sales (issue 15), kept small on purpose."""
    column = _SALES_ENTITY[kind]
    via_click = "v.given_click_id IS NOT NULL" if kind in ("shop", "product") else "v.click_id IS NOT NULL"
    return await con.fetch(
        f"""SELECT v.currency, count(*) AS orders,
                   coalesce(sum({NET_AMOUNT_SQL}), 0)::bigint AS gmv_minor,
                   coalesce(sum({NET_COMMISSION_SQL}), 0)::bigint AS commission_minor
              FROM conversions v
              LEFT JOIN attributed_clicks c ON c.event_id = v.click_id
              LEFT JOIN anchors a ON a.id = c.anchor_id
             WHERE {column} = $1 AND {via_click} AND v.status = 'confirmed'
               AND v.occurred_at >= $2 AND v.occurred_at < $3
             GROUP BY v.currency ORDER BY v.currency""", entity_id, start, end)
