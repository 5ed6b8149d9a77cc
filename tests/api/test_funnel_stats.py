"""The funnel in the stats API: beacons and clicks counted by `shoplink count`, CTR and unique CTR,
view-through, and orders / GMV / commission per currency from the recorded conversions."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import asyncpg
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from shoplink.db import Conn

from support.analytics_data import Seed, seed
from support.api import AccountFactory, Api
from support.click_data import make_shop, video_anchor
from support.funnel_data import beacon
from support.wait import until


async def test_beacons_and_clicks_make_the_funnel(
        make_account: AccountFactory, anon: Api, pool: asyncpg.Pool, redis: Redis, server: TestServer,
        count_worker: asyncio.subprocess.Process) -> None:
    seller = await make_account("seller")
    shop = await make_shop(seller)
    anchor_id, code, video_id = await video_anchor(pool, shop, duration_s=40)
    human = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120"}
    for i in range(4):  # four page views see the card; two of them play the video to 50 %
        events = [{"type": "impression", "code": code, "t": 3}]
        if i < 2:
            events += [{"type": "view", "video": video_id}, {"type": "progress", "video": video_id, "q": 25},
                       {"type": "progress", "video": video_id, "q": 50}]
        assert (await beacon(anon, events, headers={"Cookie": f"sl_vid={i:032x}", **human})).status == 204
    await beacon(anon, [{"type": "impression", "code": code}], headers={"User-Agent": "Googlebot/2.1"})
    assert (await anon.get(f"/r/{code}", headers={"Cookie": f"sl_vid={0:032x}", **human})).status == 302

    async def counted() -> dict[str, object] | None:
        reply = await seller.get(f"/api/v1/stats/videos/{video_id}?granularity=minute")
        funnel: dict[str, object] = reply.body["funnel"]
        return funnel if funnel["clicks"] == 1 and funnel["impressions"]["total"] == 5 else None  # type: ignore[index]

    funnel = await until(counted, timeout=30, interval=0.05, what="the funnel counted")
    assert funnel["impressions"] == {"human": 4, "bot": 1, "link_preview": 0, "total": 5}
    assert funnel["views"] == {"human": 2, "bot": 0, "link_preview": 0, "total": 2}
    assert funnel["unique_impressions"] == 4 and funnel["unique_clickers"] == 1
    assert funnel["ctr"] == 0.25 and funnel["unique_ctr"] == 0.25
    assert funnel["view_through"] == {"q25": {"views": 2, "rate": 1.0}, "q50": {"views": 2, "rate": 1.0},
                                      "q75": {"views": 0, "rate": 0.0}, "q100": {"views": 0, "rate": 0.0}}
    anchor = (await seller.get(f"/api/v1/stats/anchors/{anchor_id}")).body["funnel"]
    assert anchor["impressions"]["human"] == 4 and anchor["views"]["total"] == 0 and anchor["ctr"] == 0.25
    top = (await seller.get(f"/api/v1/stats/videos/{video_id}/top-anchors")).body["items"]
    assert top == [{"rank": 1, "anchor_id": anchor_id, "clicks": 1, "impressions": 4, "ctr": 0.25}]
    heat = (await seller.get(f"/api/v1/stats/videos/{video_id}/heatmap")).body
    assert heat["view_map"] == [{"second": 3, "impressions": 4}]
    csv = (await seller.get(f"/api/v1/stats/videos/{video_id}.csv?granularity=day")).body
    header = csv.split("\r\n")[0].split(",")
    assert {"impressions", "human_impressions", "views", "q25", "ctr", "unique_impressions"} <= set(header)


async def _conversion(con: Conn, s: Seed, *, click: str | None, given: str | None, amount: int,
                      currency: str, commission: int, status: str = "confirmed",
                      occurred: datetime | None = None, plan: int | None = None, refunded: int = 0) -> None:
    await con.execute(
        """INSERT INTO conversions (shop_id, order_id, amount_minor, currency, occurred_at, reported_at,
                                    given_click_id, click_id, plan_id, creator_id, product_id,
                                    commission_minor, reason, status, refunded_minor, commission_refunded_minor,
                                    refunded_at)
           VALUES ($1, $2, $3, $4, $5, now(), $6, $7, $8, $9, $10, $11, 'test', $12, $13, $14, $15)""",
        s.shop_id, f"order-{time.monotonic_ns()}", amount, currency, occurred or datetime.now(UTC),
        given, click, plan, s.creator_id if click else None, s.product_ids[0], commission, status,
        amount if status == "refunded" else refunded,
        commission if status == "refunded" else refunded * commission // amount,
        datetime.now(UTC) if status == "refunded" or refunded else None)


async def test_orders_gmv_and_commission_come_from_conversions(make_account: AccountFactory, pool: asyncpg.Pool,
                                                               server: TestServer) -> None:
    seller, creator = await make_account("seller"), await make_account("creator")
    analyst = await make_account("analyst")
    s = await seed(pool, seller.account_id, creator.account_id)
    now = datetime.now(UTC)
    async with pool.acquire() as con:
        for n, anchor in enumerate((s.video_anchor_ids[0], s.live_anchor_id)):
            await con.execute(
                """INSERT INTO attributed_clicks (event_id, ts, code, outcome, surface, anchor_id, plan_id,
                                                  creator_id, product_id, shop_id, viewer, ua_class)
                   VALUES ($1, $2, 'c', 'redirected', 'video', $3, 7, $4, $5, $6, $7, 'human')""",
                f"01J{n:023d}", now, anchor, s.creator_id, s.product_ids[0], s.shop_id, f"{n:032x}")
        click_v, click_l = f"01J{0:023d}", f"01J{1:023d}"
        await _conversion(con, s, click=click_v, given=click_v, amount=8900, currency="USD", commission=712, plan=7)
        # partly refunded: 400 of 1000 back, and its commission in proportion (80 -> 48)
        await _conversion(con, s, click=click_v, given=click_v, amount=1000, currency="USD", commission=80, plan=7,
                          refunded=400)
        await _conversion(con, s, click=click_v, given=click_v, amount=1000, currency="EUR", commission=80, plan=7)
        await _conversion(con, s, click=click_l, given=click_l, amount=500, currency="USD", commission=40, plan=7)
        await _conversion(con, s, click=click_v, given=click_v, amount=99999, currency="USD", commission=1,
                          status="refunded", plan=7)
        await _conversion(con, s, click=click_v, given=click_v, amount=77777, currency="USD", commission=1,
                          occurred=now - timedelta(days=40), plan=7)
        # the seller's own sale through a shoplink link, credited to no plan: the shop's and product's only
        await _conversion(con, s, click=None, given="01J" + "9" * 23, amount=2500, currency="JPY", commission=0)
        await _conversion(con, s, click=None, given=None, amount=12345, currency="USD", commission=0)

    async def funnel(segment: str, entity_id: int) -> dict[str, object]:
        reply = await analyst.get(f"/api/v1/stats/{segment}/{entity_id}?granularity=day")
        assert reply.status == 200, reply.body
        body: dict[str, object] = reply.body["funnel"]
        return body

    video = await funnel("videos", s.video_id)
    assert video["orders"] == 3
    assert video["gmv"] == [{"currency": "EUR", "amount": "10.00", "amount_minor": 1000, "orders": 1},
                            {"currency": "USD", "amount": "95.00", "amount_minor": 9500, "orders": 2}]
    assert video["commission"] == [{"currency": "EUR", "amount": "0.80", "amount_minor": 80},
                                   {"currency": "USD", "amount": "7.60", "amount_minor": 760}]
    assert video["conversion_rate"] is None  # no clicks counted in this test
    live = await funnel("live", s.live_id)
    assert live["orders"] == 1 and live["gmv"] == [{"currency": "USD", "amount": "5.00", "amount_minor": 500,
                                                    "orders": 1}]
    assert (await funnel("anchors", s.video_anchor_ids[0]))["orders"] == 3
    assert (await funnel("creators", s.creator_id))["orders"] == 4
    shop = await funnel("shops", s.shop_id)
    assert shop["orders"] == 5
    assert [g["currency"] for g in shop["gmv"]] == ["EUR", "JPY", "USD"]  # type: ignore[attr-defined]
    assert [g["amount"] for g in shop["gmv"]] == ["10.00", "2500", "100.00"]  # type: ignore[attr-defined]
    assert (await funnel("products", s.product_ids[0]))["orders"] == 5
