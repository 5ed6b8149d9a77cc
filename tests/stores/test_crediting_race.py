"""A sale credited by viewer while the attribution consumer commits that viewer's click: `decide`
reads twice in READ COMMITTED (has the viewer any click here; which one qualifies), and the
click may be committed between the two reads, at either point. The sale must then be credited
(or keep waiting), never settled as having no qualifying click. Found by
tests/process/test_reconciliation.py under load: one such sale in a few runs stayed unpaid."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from shoplink.affiliates import repository as repo
from shoplink.affiliates.crediting import decide
from shoplink.affiliates.models import AttributedClick
from shoplink.ids import new_ulid

SHOP = 4242


@pytest.mark.parametrize("committed_before", ["viewer_has_clicks", "last_qualifying_click"])
async def test_a_click_committed_between_the_reads_of_a_decision_is_credited(
        pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch, committed_before: str) -> None:
    now = datetime.now(UTC)
    viewer = new_ulid().lower().ljust(32, "0")
    click = AttributedClick(event_id=new_ulid(), ts=now - timedelta(minutes=5), code="race01", outcome="redirected",
                            surface="video", anchor_id=1, plan_id=1, creator_id=2, product_id=3, shop_id=SHOP,
                            viewer=viewer, ua_class="human", rate_bp=1000, rate_source="plan")
    read = getattr(repo, committed_before)

    async def consumer_commits_then_read(con: Any, **kwargs: Any) -> Any:
        async with pool.acquire() as other, other.transaction():  # the consumer's batch
            assert await repo.insert_clicks(other, [click]) == 1
        return await read(con, **kwargs)

    monkeypatch.setattr(repo, committed_before, consumer_commits_then_read)
    async with pool.acquire() as con, con.transaction():
        decision = await decide(con, shop_id=SHOP, click_id=None, viewer=viewer, occurred_at=now,
                                window=timedelta(days=7))
    assert decision.click is not None and decision.click.event_id == click.event_id
    assert decision.reason == "last_click"


async def test_a_viewer_without_clicks_waits_and_one_with_only_unqualified_clicks_does_not(
        pool: asyncpg.Pool) -> None:
    now = datetime.now(UTC)
    viewer = new_ulid().lower().ljust(32, "1")
    async with pool.acquire() as con:
        waiting = await decide(con, shop_id=SHOP, click_id=None, viewer=viewer, occurred_at=now,
                               window=timedelta(days=7))
        assert (waiting.click, waiting.reason, waiting.waiting) == (None, "no_qualifying_click", True)
        bot = AttributedClick(event_id=new_ulid(), ts=now - timedelta(minutes=1), code="race02",
                              outcome="redirected", surface="video", anchor_id=1, plan_id=1, creator_id=2,
                              product_id=3, shop_id=SHOP, viewer=viewer, ua_class="bot", rate_bp=1000,
                              rate_source="plan")
        await repo.insert_clicks(con, [bot])
        final = await decide(con, shop_id=SHOP, click_id=None, viewer=viewer, occurred_at=now,
                             window=timedelta(days=7))
        assert (final.click, final.reason, final.waiting) == (None, "no_qualifying_click", False)
