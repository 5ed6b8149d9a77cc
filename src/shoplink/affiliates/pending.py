"""Sales reported before their click was stored (`pending_attribution`), settled by the
attribution consumer.

A shop may report a sale the moment the viewer reaches it, before `shoplink count` has copied the
click from the stream (consumer lag, or a count worker down during a deploy). Such a sale is kept
with `reason = pending_attribution` and `pending_until = reported_at + SHOPLINK_ATTRIBUTION_PENDING_S`.
The attribution consumer settles it:

* right after it stores a batch of clicks (`on_clicks`): the sales waiting for one of those click
  ids, or for one of those viewers, are decided again;
* every SHOPLINK_ATTRIBUTION_SWEEP_S (`sweep`): every pending sale is decided again — this also
  catches a sale whose report committed just after the batch of its click was looked at — and
  those past `pending_until` are recorded unattributed with their reason (`click_unknown`,
  `no_qualifying_click`).

Each sale is decided in its own transaction with its row locked, so a refund or a second consumer
at the same moment is serialized with it; a sale is credited at most once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from shoplink.affiliates import repository as repo
from shoplink.affiliates.crediting import decide, outcome_values
from shoplink.affiliates.models import PENDING_ATTRIBUTION, AttributedClick
from shoplink.metrics import Registry

log = logging.getLogger(__name__)

SWEEP_BATCH = 500


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class SweepResult:
    credited: int = 0
    expired: int = 0
    pending: int = 0


class PendingSales:
    def __init__(self, pool: asyncpg.Pool, *, window: timedelta,
                 clock: Callable[[], datetime] = _utc_now, metrics: Registry | None = None) -> None:
        self._pool = pool
        self.window = window
        self.now = clock
        self._settled = (metrics or Registry()).counter(
            "shoplink_attribution_pending_sales_total",
            "Sales that waited for their click, settled: credited, or expired (unattributed).")

    async def settle(self, conversion_id: int, result: SweepResult) -> None:
        async with self._pool.acquire() as con, con.transaction():
            conversion = await repo.get_conversion(con, conversion_id, for_update=True)
            if conversion is None or conversion.reason != PENDING_ATTRIBUTION:
                return  # settled meanwhile
            assert conversion.pending_until is not None
            decision = await decide(con, shop_id=conversion.shop_id,
                                    click_id=conversion.given_click_id,
                                    viewer=conversion.given_viewer,
                                    occurred_at=conversion.occurred_at, window=self.window)
            values = outcome_values(decision, amount_minor=conversion.amount_minor,
                                    refunded_minor=conversion.refunded_minor, now=self.now(),
                                    pending_until=conversion.pending_until)
            if values["reason"] == PENDING_ATTRIBUTION:
                result.pending += 1
                return
            await repo.update_conversion(con, conversion_id, values)
        if decision.click is not None:
            result.credited += 1
            self._settled.inc(result="credited")
        else:
            result.expired += 1
            self._settled.inc(result="expired")
        log.info("pending sale settled", extra={"conversion_id": conversion_id,
                                                "reason": values["reason"]})

    async def on_clicks(self, clicks: Sequence[AttributedClick]) -> SweepResult:
        """Decide again the sales waiting for these clicks (after they were stored)."""
        result = SweepResult()
        if not clicks:
            return result
        async with self._pool.acquire() as con:
            ids = await repo.pending_for_clicks(con, [c.event_id for c in clicks],
                                                sorted({c.viewer for c in clicks}))
        for conversion_id in ids:
            await self.settle(conversion_id, result)
        return result

    async def sweep(self) -> SweepResult:
        """Decide every pending sale again; resolve those past their bound."""
        result = SweepResult()
        after = 0
        while True:
            async with self._pool.acquire() as con:
                ids = await repo.pending_ids(con, after_id=after, limit=SWEEP_BATCH)
            for conversion_id in ids:
                await self.settle(conversion_id, result)
            if len(ids) < SWEEP_BATCH:
                return result
            after = ids[-1]

    async def run(self, every_s: float) -> None:
        """Sweep every `every_s` seconds until cancelled; survives PostgreSQL outages."""
        while True:
            try:
                await self.sweep()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("pending sales sweep failed; retrying",
                            extra={"error": f"{type(exc).__name__}: {exc}"})
            await asyncio.sleep(every_s)
