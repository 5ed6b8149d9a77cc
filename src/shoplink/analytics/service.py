"""Stats reads: who may read what, and the totals / series / heatmap / top-N documents."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from shoplink.analytics import keys as k
from shoplink.analytics import repository as repo
from shoplink.analytics.models import PlanOwners, Range, SalesSource
from shoplink.analytics.reader import CounterReader
from shoplink.auth.models import Principal
from shoplink.auth.policy import can_read_all_stats, require
from shoplink.config import Settings
from shoplink.errors import NotFound, field_error
from shoplink.money import to_decimal_string
from shoplink.redis import AnyRedis

MAX_BUCKETS = 20_000
DEFAULT_SPAN_S = {"minute": 3600, "hour": 86400, "day": 30 * 86400}
NAMES = {"anchor": "anchor", "video": "video", "live": "live session", "product": "product",
         "shop": "shop", "creator": "creator", "plan": "promotion plan"}


def iso(seconds: int) -> str:
    if type(seconds) is int and seconds >= 0:  # the common case, ~3x faster than datetime
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def summarize(row: list[int]) -> dict[str, Any]:
    """12 counts (keys.PAIRS order) -> clicks, by class, by outcome, and the full matrix."""
    by_class = {c: 0 for c in k.CLASSES}
    by_outcome = {o: 0 for o in k.OUTCOMES}
    matrix: dict[str, dict[str, int]] = {c: {} for c in k.CLASSES}
    for (c, o), n in zip(k.CLICK_PAIRS, row, strict=False):  # the click columns come first
        by_class[c] += n
        by_outcome[o] += n
        matrix[c][o] = n
    return {"clicks": sum(row[:len(k.CLICK_PAIRS)]), "by_class": by_class, "by_outcome": by_outcome,
            "by_class_outcome": matrix}


_MEASURE_INDEX = {(c, m): i for i, (c, m) in enumerate(k.PAIRS)}
_HUMAN_CLICKS = [_MEASURE_INDEX[("human", o)] for o in k.OUTCOMES]


def _by_class(row: Sequence[int], measure: str) -> dict[str, int]:
    out = {c: row[_MEASURE_INDEX[(c, measure)]] for c in k.CLASSES}
    out["total"] = sum(out.values())
    return out


def _funnel_item(row: Sequence[int]) -> dict[str, Any]:
    """The player's counts of one bucket: impressions and views (every class and human), human
    quartiles, and the CTR (human clicks / human impressions)."""
    human_impressions = row[_MEASURE_INDEX[("human", "impression")]]
    human_clicks = sum(row[i] for i in _HUMAN_CLICKS)
    return {"impressions": sum(row[_MEASURE_INDEX[(c, "impression")]] for c in k.CLASSES),
            "human_impressions": human_impressions,
            "views": sum(row[_MEASURE_INDEX[(c, "view")]] for c in k.CLASSES),
            "human_views": row[_MEASURE_INDEX[("human", "view")]],
            **{q: row[_MEASURE_INDEX[("human", q)]] for q in QUARTILES},
            "ctr": rate(human_clicks, human_impressions)}


QUARTILES = ("q25", "q50", "q75", "q100")


def funnel(row: Sequence[int], unique_clickers: int, unique_shown: int,
           sales: Sequence[tuple[str, int, int, int]]) -> dict[str, Any]:
    """The funnel over a range: impressions -> clicks -> orders -> GMV and commission.

    Rates use human traffic only: CTR = human clicks / human impressions; unique CTR = unique
    human clickers / unique human viewers shown a card (HyperLogLogs, ~0.8 % error); view-through
    = human views reaching each quartile / human views; conversion rate = orders / human clicks."""
    human_clicks = sum(row[i] for i in _HUMAN_CLICKS)
    impressions, views = _by_class(row, "impression"), _by_class(row, "view")
    human_views = views["human"]
    orders = sum(s[1] for s in sales)
    return {
        "impressions": impressions, "unique_impressions": unique_shown, "views": views,
        "clicks": human_clicks, "unique_clickers": unique_clickers,
        "ctr": rate(human_clicks, impressions["human"]), "unique_ctr": rate(unique_clickers, unique_shown),
        "view_through": {q: {"views": row[_MEASURE_INDEX[("human", q)]],
                             "rate": rate(row[_MEASURE_INDEX[("human", q)]], human_views)}
                         for q in QUARTILES},
        "orders": orders, "conversion_rate": rate(orders, human_clicks),
        "gmv": [{"currency": cur, "amount": to_decimal_string(gmv, cur), "amount_minor": gmv, "orders": n}
                for cur, n, gmv, _ in sales],
        "commission": [{"currency": cur, "amount": to_decimal_string(fee, cur), "amount_minor": fee}
                       for cur, _, _, fee in sales],
    }


def rate(part: int, whole: int) -> float | None:
    """part / whole, rounded to 6 places; None when whole is 0."""
    return round(part / whole, 6) if whole else None


def _series_item(bucket: int, row: list[int], unique_viewers: int | None) -> dict[str, Any]:
    """One bucket of the series (row in keys.PAIRS order: 3 classes x 4 outcomes)."""
    hr, hf, hg, hn, br, bf, bg, bn, pr, pf, pg, pn = row[:12]
    h, b, p = hr + hf + hg + hn, br + bf + bg + bn, pr + pf + pg + pn
    item: dict[str, Any] = {
        "t": iso(bucket), "clicks": h + b + p, "human": h, "bot": b, "link_preview": p,
        "redirected": hr + br + pr, "fallback": hf + bf + pf, "gone": hg + bg + pg, "not_found": hn + bn + pn}
    if unique_viewers is not None:
        item["unique_viewers"] = unique_viewers
    return item


class StatsService:
    def __init__(self, pool: asyncpg.Pool, redis: AnyRedis, settings: Settings, plans: PlanOwners,
                 sales: SalesSource | None = None) -> None:
        self.pool = pool
        self.settings = settings
        self.plans = plans
        self.sales = sales
        self.reader = CounterReader(redis, pool, settings.click_shards, settings.stats_buckets)

    # ---- authorization -------------------------------------------------------------------

    async def authorize(self, principal: Principal, kind: str, entity_id: int) -> None:
        """404 for what does not exist or is not the principal's; 403 for a role without stats."""
        require(principal, "stats.read")
        read_all = can_read_all_stats(principal)
        me = principal.account_id
        allowed: bool
        if kind == "plan":
            owner = await self.plans.plan_owner(entity_id)
            allowed = owner is not None and (read_all or owner == me)
        else:
            async with self.pool.acquire() as con:
                if kind == "anchor":
                    owners = await repo.anchor_owners(con, entity_id)
                    allowed = owners is not None and (read_all or me in owners)
                elif kind == "creator":
                    allowed = (read_all or entity_id == me) and await repo.account_exists(con, entity_id)
                else:
                    lookup = {"video": repo.video_owner, "live": repo.live_owner,
                              "product": repo.product_owner, "shop": repo.shop_owner}[kind]
                    owner = await lookup(con, entity_id)
                    allowed = owner is not None and (read_all or owner == me)
        if not allowed:
            raise NotFound(f"{NAMES[kind]} not found")

    # ---- parameters ----------------------------------------------------------------------

    def make_range(self, granularity: str | None, start: int | None, end: int | None,
                   now_s: int | None = None) -> Range:
        gran = granularity or "hour"
        if gran not in k.GRANULARITIES:
            raise field_error("granularity", "must be minute, hour or day")
        size = self.settings.stats_buckets[k.GRANULARITIES.index(gran)]
        now_s = int(time.time()) if now_s is None else now_s
        end = now_s if end is None else end
        start = end - DEFAULT_SPAN_S[gran] if start is None else start
        if start >= end:
            raise field_error("from", "must be before `to`")
        start_s = start - start % size
        end_s = end if end % size == 0 else end - end % size + size
        if (end_s - start_s) // size > MAX_BUCKETS:
            raise field_error("from", f"the range holds more than {MAX_BUCKETS} {gran} buckets; "
                                      "use a coarser granularity", code="range_too_large")
        retention = {"minute": self.settings.stats_minute_retention_s,
                     "hour": self.settings.stats_hour_retention_s,
                     "day": self.settings.stats_day_retention_s}[gran]
        if retention and start_s < now_s - retention - size:
            raise field_error("from", f"the {gran} series is kept {retention} s; use a coarser granularity",
                              code="beyond_retention")
        return Range(gran, start_s, end_s, size)

    # ---- documents -----------------------------------------------------------------------

    async def entity_stats(self, principal: Principal, kind: str, entity_id: int,
                           rng: Range) -> tuple[dict[str, Any], dict[int, list[int]]]:
        """(the JSON document, bucket -> 12 counts in keys.PAIRS order)."""
        await self.authorize(principal, kind, entity_id)
        counts, (unique_total, per_day), (shown_total, shown_per_day), sales = await asyncio.gather(
            self.reader.counts(kind, entity_id, rng.granularity, rng.start_s, rng.end_s),
            self.reader.uniques(kind, entity_id, rng.start_s, rng.end_s),
            self.reader.uniques(kind, entity_id, rng.start_s, rng.end_s, "impression"),
            self._sales(kind, entity_id, rng))
        series = []
        zero = [0] * len(k.PAIRS)
        day = rng.granularity == "day"
        used = []
        for bucket in range(rng.start_s, rng.end_s, rng.size_s):
            row = counts.get(bucket, zero)
            if row is not zero:
                used.append(row)
            item = _series_item(bucket, row, per_day.get(bucket, 0) if day else None)
            item.update(_funnel_item(row))
            if day:
                item["unique_impressions"] = shown_per_day.get(bucket, 0)
            series.append(item)
        total = [sum(column) for column in zip(*used, strict=True)] if used else list(zero)
        clicks = summarize(total)
        doc = {"kind": kind, "id": entity_id, "granularity": rng.granularity,
               "from": iso(rng.start_s), "to": iso(rng.end_s), "bucket_s": rng.size_s,
               "totals": clicks, "unique_viewers": unique_total,
               "funnel": funnel(total, unique_total, shown_total, sales), "series": series}
        return doc, counts

    async def _sales(self, kind: str, entity_id: int, rng: Range) -> list[tuple[str, int, int, int]]:
        if self.sales is None:
            return []
        return await self.sales.sales_totals(kind, entity_id, datetime.fromtimestamp(rng.start_s, UTC),
                                             datetime.fromtimestamp(rng.end_s, UTC))

    async def heatmap(self, principal: Principal, video_id: int) -> dict[str, Any]:
        await self.authorize(principal, "video", video_id)
        cells, views = await asyncio.gather(self.reader.heatmap(video_id),
                                            self.reader.heatmap(video_id, views=True))
        return {"video_id": video_id, "bucket_s": self.settings.stats_heatmap_bucket_s,
                "clicks": sum(cells.values()),
                "cells": [{"second": s, "clicks": n} for s, n in sorted(cells.items()) if n],
                "impressions": sum(views.values()),
                "view_map": [{"second": s, "impressions": n} for s, n in sorted(views.items()) if n]}

    async def top(self, principal: Principal, parent_kind: str, parent_id: int, limit: int) -> dict[str, Any]:
        await self.authorize(principal, parent_kind, parent_id)
        found = await self.reader.top_funnel(parent_kind, parent_id)
        # by human clicks, then human impressions (a card seen but not clicked still ranks)
        ranked = sorted(((n, shown, child) for child, (n, shown) in found.items() if n or shown),
                        key=lambda x: (-x[0], -x[1], x[2]))
        child = k.TOP_CHILD[parent_kind]
        return {"kind": parent_kind, "id": parent_id, "child_kind": child, "limit": limit,
                "items": [{"rank": i + 1, f"{child}_id": c, "clicks": n, "impressions": shown,
                           "ctr": rate(n, shown)}
                          for i, (n, shown, c) in enumerate(ranked[:limit])]}
