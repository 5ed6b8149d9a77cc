"""Per-plan and per-creator reports: clicks by class, conversions, sales and commission owed.

Creators see what they earned, sellers what their plans produced (an account that is both sees
both), analysts and admins everything. Amounts are summed per currency, never converted.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from shoplink.affiliates import repository as repo
from shoplink.auth import policy
from shoplink.auth.models import Principal
from shoplink.money import to_decimal_string

UA_CLASSES = ("human", "bot", "link_preview")
CSV_COLUMNS = ("group_by", "id", "currency", "clicks_human", "clicks_bot", "clicks_link_preview",
               "clicks_total", "conversions", "refunded", "sales_amount", "commission_owed")


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime


class ReportService:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def sales_totals(self, kind: str, entity_id: int, start: datetime,
                           end: datetime) -> list[tuple[str, int, int, int]]:
        """(currency, orders, gmv_minor, commission_minor) of an entity's conversions in
        [start, end) (repository.sales_totals says which); for the stats API, which has already
        checked that the caller may read the entity."""
        async with self._pool.acquire() as con:
            rows = await repo.sales_totals(con, kind, entity_id, start, end)
        return [(r["currency"], r["orders"], r["gmv_minor"], r["commission_minor"]) for r in rows]

    async def report(self, who: Principal, *, group_by: str, period: Period, plan_id: int | None,
                     creator_id: int | None) -> list[dict[str, Any]]:
        policy.require(who, "stats.read")
        scope = None if policy.can_read_all_stats(who) else who.account_id
        args: dict[str, Any] = {"group_by": group_by, "start": period.start, "end": period.end,
                                "scope_account": scope, "plan_id": plan_id,
                                "creator_id": creator_id}
        async with self._pool.acquire() as con:
            clicks = await repo.click_counts(con, **args)
            sums = await repo.conversion_sums(con, **args)
        rows: dict[int | None, dict[str, Any]] = {}

        def row(key: int | None) -> dict[str, Any]:
            if key not in rows:
                rows[key] = {f"{group_by}_id": key,
                             "clicks": {**dict.fromkeys(UA_CLASSES, 0), "total": 0},
                             "conversions": 0, "refunded": 0, "sales": []}
            return rows[key]

        for r in clicks:
            entry = row(r["key"])
            entry["clicks"][r["ua_class"]] = entry["clicks"].get(r["ua_class"], 0) + r["clicks"]
            entry["clicks"]["total"] += r["clicks"]
        for r in sums:
            entry = row(r["key"])
            currency = r["currency"].strip()
            entry["conversions"] += r["conversions"]
            entry["refunded"] += r["refunded"]
            entry["sales"].append({
                "currency": currency, "conversions": r["conversions"], "refunded": r["refunded"],
                "amount_minor": r["sales_minor"],
                "amount": to_decimal_string(r["sales_minor"], currency),
                "commission_owed_minor": r["commission_minor"],
                "commission_owed": to_decimal_string(r["commission_minor"], currency)})
        return [rows[k] for k in sorted(rows, key=lambda k: (k is None, k or 0))]


def to_csv(items: list[dict[str, Any]], group_by: str) -> str:
    """One line per (plan or creator, currency); a line without a currency when nothing sold."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for item in items:
        clicks = item["clicks"]
        base = [group_by, item[f"{group_by}_id"] or ""]
        counts = [clicks["human"], clicks["bot"], clicks["link_preview"], clicks["total"]]
        if not item["sales"]:
            writer.writerow([*base, "", *counts, 0, 0, "", ""])
        for sale in item["sales"]:
            writer.writerow([*base, sale["currency"], *counts, sale["conversions"],
                             sale["refunded"], sale["amount"], sale["commission_owed"]])
    return out.getvalue()
