"""Statements: a creator's earnings per plan and period, and what a seller owes each creator.

Every line is one currency (sums are never converted or mixed). For each line:
`commission_owed = commission - commission_refunded = pending + payable + frozen + paid`
(a wholly refunded sale owes nothing), which `shoplink reconcile` checks against the reports.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg

from shoplink.affiliates import repository as repo
from shoplink.affiliates.conversions import ConversionService
from shoplink.affiliates.reports import Period
from shoplink.auth import policy
from shoplink.auth.models import Principal
from shoplink.money import to_decimal_string

STATES = ("pending", "payable", "frozen", "paid")
_COUNTS = ("sales", "refunded_sales")
_AMOUNTS = ("sales_amount", "refunds", "net_sales", "commission", "commission_refunded",
            "commission_owed", *STATES)

EARNINGS_CSV = ("plan_id", "currency", *_COUNTS, *_AMOUNTS)
DUE_CSV = ("creator_id", "currency", *_COUNTS, *_AMOUNTS)

Key = tuple[int | None, str]


def _lines(rows: Sequence[asyncpg.Record], key: Callable[[asyncpg.Record], int | None],
           name: str) -> list[dict[str, Any]]:
    """Rows by (key, currency, state) -> one line per (key, currency)."""
    sums: dict[Key, dict[str, int]] = {}
    for r in rows:
        currency = r["currency"].strip()
        line = sums.setdefault((key(r), currency), dict.fromkeys((*_COUNTS, *_AMOUNTS), 0))
        owed = r["commission_minor"] - r["commission_refunded_minor"]
        line["sales"] += r["sales"]
        line["sales_amount"] += r["amount_minor"]
        line["refunds"] += r["refunded_minor"]
        line["net_sales"] += r["amount_minor"] - r["refunded_minor"]
        line["commission"] += r["commission_minor"]
        line["commission_refunded"] += r["commission_refunded_minor"]
        line["commission_owed"] += owed
        if r["state"] == "refunded":
            line["refunded_sales"] += r["sales"]
        else:
            line[r["state"]] += owed
    return [_render({name: k, "currency": currency}, values)
            for (k, currency), values in sorted(sums.items(), key=lambda kv: (kv[0][0] or 0, kv[0][1]))]


def _render(head: dict[str, Any], values: dict[str, int]) -> dict[str, Any]:
    currency = head["currency"]
    out = {**head, **{c: values[c] for c in _COUNTS}}
    for field in _AMOUNTS:
        out[f"{field}_minor"] = values[field]
        out[field] = to_decimal_string(values[field], currency)
    return out


def _totals(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The lines summed per currency."""
    sums: dict[str, dict[str, int]] = {}
    for line in lines:
        total = sums.setdefault(line["currency"], dict.fromkeys((*_COUNTS, *_AMOUNTS), 0))
        for c in _COUNTS:
            total[c] += line[c]
        for a in _AMOUNTS:
            total[a] += line[f"{a}_minor"]
    return [_render({"currency": c}, v) for c, v in sorted(sums.items())]


class StatementService:
    def __init__(self, pool: asyncpg.Pool, *, conversions: ConversionService) -> None:
        self._pool = pool
        self._conversions = conversions

    async def earnings(self, who: Principal, *, period: Period, creator_id: int | None,
                       plan_id: int | None) -> dict[str, Any]:
        """A creator's statement: the sales credited to them that occurred in the period, per
        plan and currency, their commission by settlement state, and the payouts received in the
        period. Analysts and admins may name any `creator_id`; everyone else gets their own."""
        policy.require(who, "stats.read")
        if creator_id is None or not policy.can_read_all_stats(who):
            creator_id = who.account_id
        now = self._conversions.now()
        async with self._pool.acquire() as con:
            rows = await repo.earnings(con, creator_id=creator_id, seller_id=None,
                                       plan_id=plan_id, start=period.start, end=period.end,
                                       now=now, window=self._conversions.rules.return_window)
            payouts = await repo.list_payouts(con, seller_id=None, creator_id=creator_id,
                                              start=period.start, end=period.end)
        lines = _lines(rows, lambda r: r["plan_id"], "plan_id")
        return {"creator_id": creator_id, "from": period.start.isoformat(),
                "to": period.end.isoformat(), "as_of": now.isoformat(), "items": lines,
                "totals": _totals(lines), "payouts": [p.to_json() for p in payouts]}

    async def payouts_due(self, who: Principal) -> dict[str, Any]:
        """What the caller (a seller) owes each creator now, per currency: `payable` can be
        paid (POST /api/v1/payouts), `pending` and `frozen` later; `paid` so far."""
        policy.require(who, "conversions.report")
        now = self._conversions.now()
        async with self._pool.acquire() as con:
            rows = await repo.earnings(con, creator_id=None, seller_id=who.account_id,
                                       plan_id=None, start=None, end=None, now=now,
                                       window=self._conversions.rules.return_window)
        lines = _lines(rows, lambda r: r["creator_id"], "creator_id")
        return {"seller_id": who.account_id, "as_of": now.isoformat(), "items": lines,
                "totals": _totals(lines)}


def to_csv(lines: list[dict[str, Any]], columns: Sequence[str]) -> str:
    """RFC 4180 (CRLF line ends), amounts as decimal strings in each line's currency."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for line in lines:
        writer.writerow(["" if line[c] is None else line[c] for c in columns])
    return out.getvalue()
