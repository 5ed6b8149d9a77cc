"""SQL for shop domains (their claims and states) and the operator audit log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from shoplink.db import Conn
from shoplink.domains.models import AuditEntry, ShopDomain

_COLUMNS = """shop_id, domain, include_subdomains, state, token, verified_at, verified_by, created_at,
              state_changed_at, pending_since, last_checked_at, next_check_at, check_failures,
              proof_missing_since, failure_reason, failure"""
# Columns `update` may set (a fixed list: names are never taken from input).
_UPDATABLE = frozenset({"include_subdomains", "state", "verified_at", "verified_by", "pending_since",
                        "last_checked_at", "next_check_at", "check_failures", "proof_missing_since",
                        "failure_reason", "failure"})


def _domain(row: asyncpg.Record) -> ShopDomain:
    return ShopDomain(**{k: row[k] for k in ShopDomain.__dataclass_fields__ if k in row})


def parents(domain: str) -> list[str]:
    """The strict ancestors of a name: a.b.example -> [b.example, example]."""
    labels = domain.split(".")
    return [".".join(labels[i:]) for i in range(1, len(labels))]


async def for_shop(con: Conn, shop_id: int) -> list[ShopDomain]:
    rows = await con.fetch(f"SELECT {_COLUMNS} FROM shop_domains WHERE shop_id = $1 ORDER BY domain", shop_id)
    return [_domain(r) for r in rows]


async def for_shops(con: Conn, shop_ids: Sequence[int]) -> dict[int, list[ShopDomain]]:
    rows = await con.fetch(
        f"SELECT {_COLUMNS} FROM shop_domains WHERE shop_id = ANY($1::bigint[]) ORDER BY domain",
        list(shop_ids))
    out: dict[int, list[ShopDomain]] = {}
    for row in rows:
        out.setdefault(row["shop_id"], []).append(_domain(row))
    return out


async def get(con: Conn, shop_id: int, domain: str, *, for_update: bool = False) -> ShopDomain | None:
    lock = " FOR UPDATE" if for_update else ""
    row = await con.fetchrow(
        f"SELECT {_COLUMNS} FROM shop_domains WHERE shop_id = $1 AND domain = $2{lock}", shop_id, domain)
    return _domain(row) if row else None


async def list_domains(con: Conn, *, shop_id: int | None, state: str | None, domain: str | None,
                       limit: int) -> list[ShopDomain]:
    rows = await con.fetch(
        f"""SELECT {_COLUMNS} FROM shop_domains
             WHERE ($1::bigint IS NULL OR shop_id = $1) AND ($2::text IS NULL OR state = $2)
               AND ($3::text IS NULL OR domain = $3)
             ORDER BY shop_id, domain LIMIT $4""", shop_id, state, domain, limit)
    return [_domain(r) for r in rows]


async def now(con: Conn) -> datetime:
    """The database's clock (the transaction's start): every schedule uses one clock."""
    value: datetime = await con.fetchval("SELECT now()")
    return value


async def insert(con: Conn, shop_id: int, domain: str, include_subdomains: bool, token: str, *,
                 state: str, verified_by: str | None, next_check_in_s: float | None) -> None:
    """A new claim. Raises asyncpg.ForeignKeyViolationError when the shop does not exist."""
    await con.execute(
        """INSERT INTO shop_domains (shop_id, domain, include_subdomains, token, state, verified_by,
                                     verified_at, next_check_at)
           VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $5 = 'verified' THEN now() END,
                   now() + make_interval(secs => $7::float8))""",
        shop_id, domain, include_subdomains, token, state, verified_by, next_check_in_s)


async def update(con: Conn, shop_id: int, domain: str, changes: dict[str, Any]) -> None:
    """Set `changes`; `state_changed_at` moves when the state does."""
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise ValueError(f"not updatable: {', '.join(sorted(unknown))}")
    columns = list(changes)
    assignments = ", ".join(f"{c} = ${i + 3}" for i, c in enumerate(columns))
    if "state" in changes:  # the right-hand side sees the row as it was
        assignments += (f", state_changed_at = CASE WHEN state IS DISTINCT FROM ${columns.index('state') + 3} "
                        "THEN now() ELSE state_changed_at END")
    await con.execute(f"UPDATE shop_domains SET {assignments} WHERE shop_id = $1 AND domain = $2",
                      shop_id, domain, *[changes[c] for c in columns])


async def delete(con: Conn, shop_id: int, domain: str) -> bool:
    result: str = await con.execute("DELETE FROM shop_domains WHERE shop_id = $1 AND domain = $2",
                                    shop_id, domain)
    return result.endswith(" 1")


async def lock_name(con: Conn, registrable: str) -> None:
    """Serialize, until the transaction ends, every claim and state change under one registrable
    domain: two shops racing for names that can conflict take turns."""
    await con.execute("SELECT pg_advisory_xact_lock(hashtextextended('shoplink-domain:' || $1, 0))",
                      registrable)


_CONFLICT = """shop_id <> $1 AND (domain = $2
                 OR (include_subdomains AND domain = ANY($3::text[]))
                 OR ($4 AND right(domain, length($2) + 1) = '.' || $2))"""


async def verified_conflicts(con: Conn, shop_id: int, domain: str,
                             include_subdomains: bool) -> list[tuple[int, str]]:
    """Other shops' verified entries that this claim would overlap: the same name, a wildcard
    above it, or (when it is a wildcard) a name below it. Development loopback hosts excepted."""
    rows = await con.fetch(
        f"""SELECT shop_id, domain FROM shop_domains
             WHERE state = 'verified' AND verified_by <> 'dev_loopback' AND {_CONFLICT}
             ORDER BY domain""", shop_id, domain, parents(domain), include_subdomains)
    return [(r["shop_id"], r["domain"]) for r in rows]


async def rivals(con: Conn, shop_id: int, domain: str, include_subdomains: bool) -> list[ShopDomain]:
    """Other shops' unverified claims (pending or lapsed) that overlap this one, locked."""
    rows = await con.fetch(
        f"""SELECT {_COLUMNS} FROM shop_domains
             WHERE state IN ('pending', 'lapsed') AND {_CONFLICT}
             ORDER BY shop_id, domain FOR UPDATE""", shop_id, domain, parents(domain), include_subdomains)
    return [_domain(r) for r in rows]


async def claim_due(con: Conn, limit: int, lease_s: float) -> list[ShopDomain]:
    """Up to `limit` domains due for a check, leased for `lease_s` (their next check moves on, so
    that other watchers skip them; the check's outcome sets the real next time)."""
    rows = await con.fetch(
        f"""UPDATE shop_domains d SET next_check_at = now() + make_interval(secs => $2::float8)
              FROM (SELECT shop_id, domain FROM shop_domains
                     WHERE next_check_at <= now() AND state <> 'failed'
                       AND (state <> 'verified' OR verified_by IN ('dns_txt', 'https_file'))
                     ORDER BY next_check_at LIMIT $1 FOR UPDATE SKIP LOCKED) due
             WHERE d.shop_id = due.shop_id AND d.domain = due.domain
         RETURNING {', '.join('d.' + c.strip() for c in _COLUMNS.split(','))}""", limit, lease_s)
    return [_domain(r) for r in rows]


# ---- the audit log --------------------------------------------------------------------------

async def insert_audit(con: Conn, shop_id: int, domain: str, action: str, actor: str, reason: str,
                       include_subdomains: bool) -> AuditEntry:
    row = await con.fetchrow(
        """INSERT INTO domain_audit (shop_id, domain, action, actor, reason, include_subdomains)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING *""",
        shop_id, domain, action, actor, reason, include_subdomains)
    assert row is not None
    return AuditEntry(**{k: row[k] for k in AuditEntry.__dataclass_fields__})


async def last_operator_action(con: Conn, shop_id: int, domain: str) -> str | None:
    """`approve` or `revoke`: the operator's last word on this shop's claim (None: never spoke)."""
    action: str | None = await con.fetchval(
        """SELECT action FROM domain_audit WHERE shop_id = $1 AND domain = $2
              AND action IN ('approve', 'revoke') ORDER BY id DESC LIMIT 1""", shop_id, domain)
    return action


async def audit_log(con: Conn, *, shop_id: int | None, domain: str | None, limit: int) -> list[AuditEntry]:
    rows = await con.fetch(
        """SELECT * FROM domain_audit WHERE ($1::bigint IS NULL OR shop_id = $1)
              AND ($2::text IS NULL OR domain = $2) ORDER BY id DESC LIMIT $3""", shop_id, domain, limit)
    return [AuditEntry(**{k: r[k] for k in AuditEntry.__dataclass_fields__}) for r in rows]
