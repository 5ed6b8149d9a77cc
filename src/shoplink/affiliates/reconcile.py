"""`shoplink reconcile`: check, to the minor unit, that the affiliate money adds up.

Read-only. It recomputes every conversion's commission from its amount, refunds and rate (the
money rules of crediting.py) and checks the stored columns, the refunds table and the payouts,
then sums the commission owed per (plan, currency) five ways — over the conversions one by one,
with the SQL expressions (repository.NET_COMMISSION_SQL), as the stats API's funnel reads it
(repository.sales_totals), as the affiliate report adds it up, and as the creators' statements do
(by settlement state) — and checks that they are equal. Exit code 0: everything adds up; 1: the problems are listed.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from shoplink import db
from shoplink.affiliates import repository as repo
from shoplink.affiliates.models import PENDING_ATTRIBUTION, Conversion
from shoplink.config import Settings
from shoplink.money import percentage_of, to_decimal_string

Key = tuple[int, str]  # plan, currency
BATCH = 5000
MAX_PROBLEMS = 100


@dataclass
class Reconciliation:
    conversions: int = 0
    attributed: int = 0
    pending: int = 0
    overdue_pending: int = 0  # past their bound: the attribution consumer's sweep is not running
    payouts_checked: bool = False
    owed: dict[Key, int] = field(default_factory=dict)  # by plan and currency, the first way
    problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        totals: dict[str, int] = defaultdict(int)
        for (_, currency), owed in self.owed.items():
            totals[currency] += owed
        return {"ok": self.ok, "conversions": self.conversions, "attributed": self.attributed,
                "pending": self.pending, "overdue_pending": self.overdue_pending,
                "plans": len({plan for plan, _ in self.owed}),
                "commission_owed": {c: to_decimal_string(v, c) for c, v in sorted(totals.items())},
                "problems": self.problems}


def check_conversion(c: Conversion, refunds: int, out: Reconciliation) -> None:
    """The stored money of one conversion against the rules."""
    where = f"conversion {c.id}"
    if refunds != c.refunded_minor:
        out.problem(f"{where}: refunded_minor {c.refunded_minor} but its refunds add up to {refunds}")
    if not 0 <= c.refunded_minor <= c.amount_minor:
        out.problem(f"{where}: refunded {c.refunded_minor} outside 0..{c.amount_minor}")
    if (c.status == "refunded") != (c.refunded_minor == c.amount_minor and c.refunded_at is not None):
        out.problem(f"{where}: status {c.status} with {c.refunded_minor} of {c.amount_minor} refunded")
    if c.click_id is None:
        if c.commission_minor or c.commission_refunded_minor or c.payout_id is not None:
            out.problem(f"{where}: credited to nobody but carries a commission or a payout")
        return
    if c.rate_bp is None:
        out.problem(f"{where}: credited without a rate")
        return
    if c.commission_minor != percentage_of(c.amount_minor, c.rate_bp):
        out.problem(f"{where}: commission {c.commission_minor} is not "
                    f"{percentage_of(c.amount_minor, c.rate_bp)} at {c.rate_bp} bp")
    owed = percentage_of(c.amount_minor - c.refunded_minor, c.rate_bp)
    if c.commission_owed_minor != owed:
        out.problem(f"{where}: owes {c.commission_owed_minor}, the rule gives {owed}")
    if c.commission_owed_minor < 0:
        out.problem(f"{where}: negative commission owed")


def _add(sums: dict[Key, int], key: Key, value: int) -> None:
    sums[key] = sums.get(key, 0) + value


def _compare(out: Reconciliation, name: str, other: dict[Key, int]) -> None:
    mine = {k: v for k, v in out.owed.items() if v}
    theirs = {k: v for k, v in other.items() if v}
    for key in sorted(set(mine) | set(theirs)):
        if mine.get(key, 0) != theirs.get(key, 0):
            out.problem(f"plan {key[0]} {key[1]}: conversions owe {mine.get(key, 0)}, "
                        f"{name} {theirs.get(key, 0)}")


async def reconcile(pool: asyncpg.Pool, *, now: datetime, return_window: timedelta) -> Reconciliation:
    out = Reconciliation()
    async with pool.acquire() as con, con.transaction(isolation="repeatable_read", readonly=True):
        # one snapshot: every sum below sees the same rows
        refunds = await repo.refund_sums(con)
        first: datetime | None = None
        last: datetime | None = None
        after = 0
        while rows := await repo.conversion_rows(con, after_id=after, limit=BATCH):
            for c in rows:
                out.conversions += 1
                check_conversion(c, refunds.get(c.id, 0), out)
                if c.reason == PENDING_ATTRIBUTION:
                    out.pending += 1
                    if c.pending_until is not None and c.pending_until < now:
                        out.overdue_pending += 1
                if c.click_id is not None and c.plan_id is not None:
                    out.attributed += 1
                    _add(out.owed, (c.plan_id, c.currency), c.commission_owed_minor)
                    first = c.occurred_at if first is None else min(first, c.occurred_at)
                    last = c.occurred_at if last is None else max(last, c.occurred_at)
            after = rows[-1].id

        by_sql = {(r["plan_id"], r["currency"].strip()): r["commission_owed_minor"]
                  for r in await repo.commission_by_plan(con)}
        _compare(out, "the stats' SQL expression", by_sql)

        by_report: dict[Key, int] = {}
        if first is not None and last is not None:
            start, end = first, last + timedelta(seconds=1)
            for r in await repo.conversion_sums(con, group_by="plan", start=start, end=end,
                                                scope_account=None, plan_id=None, creator_id=None):
                _add(by_report, (r["key"], r["currency"].strip()), r["commission_minor"])
        _compare(out, "the affiliate report", by_report)

        by_stats: dict[Key, int] = {}
        if first is not None and last is not None:
            for plan_id in sorted({plan for plan, _ in out.owed}):
                for r in await repo.sales_totals(con, "plan", plan_id, first,
                                                 last + timedelta(seconds=1)):
                    _add(by_stats, (plan_id, r["currency"].strip()), r["commission_minor"])
        _compare(out, "the stats API's funnel", by_stats)

        by_statement: dict[Key, int] = {}
        for r in await repo.earnings(con, creator_id=None, seller_id=None, plan_id=None,
                                     start=None, end=None, now=now, window=return_window):
            _add(by_statement, (r["plan_id"], r["currency"].strip()),
                 r["commission_minor"] - r["commission_refunded_minor"])
        _compare(out, "the creators' statements", by_statement)

        for r in await repo.payout_mismatches(con):
            out.problem(f"payout {r['id']}: records {r['amount_minor']} for {r['conversions']} "
                        f"sales, the sales it marked owe {r['marked_minor']} ({r['marked']})")
        out.payouts_checked = True
    return out


def add_parser(sub: Any) -> None:
    sub.add_parser("reconcile", help="check that affiliate commissions add up to the minor unit "
                                     "(conversions, reports, statements, payouts); exit 1 if not")


async def reconcile_command(settings: Settings, args: argparse.Namespace) -> int:
    pool = await db.create_pool(settings.database_url, min_size=1, max_size=2)
    try:
        result = await reconcile(pool, now=datetime.now(UTC),
                                 return_window=timedelta(days=settings.return_window_days))
    finally:
        await pool.close()
    sys.stdout.write(orjson.dumps(result.to_json(), option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0 if result.ok else 1
