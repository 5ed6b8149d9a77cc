"""The stats API over real HTTP: who may read what (every endpoint), the documents (totals,
series, heatmap, top-N), CSV, and parameter errors."""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from redis.asyncio import Redis

from shoplink.analytics.consumer import CountWorker
from shoplink.config import Settings

from support.analytics_data import Seed, seed
from support.api import AccountFactory, Api
from support.event_data import event, write_events


@dataclass(frozen=True)
class People:
    seller: Api
    other_seller: Api
    creator: Api
    other_creator: Api
    analyst: Api
    admin: Api
    anon: Api

    @property
    def all(self) -> dict[str, Api]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@pytest.fixture
async def world(pool: asyncpg.Pool, make_account: AccountFactory, anon: Api) -> tuple[Seed, Seed, People]:
    seller, other_seller = await make_account("seller"), await make_account("seller")
    creator, other_creator = await make_account("creator"), await make_account("creator")
    people = People(seller=seller, other_seller=other_seller, creator=creator, other_creator=other_creator,
                    analyst=await make_account("analyst"), admin=await make_account("admin"), anon=anon)
    mine = await seed(pool, seller.account_id, creator.account_id, tag="a")
    theirs = await seed(pool, other_seller.account_id, other_creator.account_id, tag="b")
    return mine, theirs, people


async def count(settings: Settings, redis: Redis, pool: asyncpg.Pool) -> None:
    await CountWorker(settings.replace(count_block_ms=50), redis, pool, exit_when_idle=True,
                      rollups=False, trims=False).run()


def paths(s: Seed) -> dict[str, str]:
    return {
        "anchor": f"/api/v1/stats/anchors/{s.video_anchor_ids[0]}",
        "live_anchor": f"/api/v1/stats/anchors/{s.live_anchor_id}",
        "video": f"/api/v1/stats/videos/{s.video_id}",
        "live": f"/api/v1/stats/live/{s.live_id}",
        "product": f"/api/v1/stats/products/{s.product_ids[0]}",
        "shop": f"/api/v1/stats/shops/{s.shop_id}",
        "creator": f"/api/v1/stats/creators/{s.creator_id}",
        "heatmap": f"/api/v1/stats/videos/{s.video_id}/heatmap",
        "video_top": f"/api/v1/stats/videos/{s.video_id}/top-anchors",
        "live_top": f"/api/v1/stats/live/{s.live_id}/top-anchors",
        "shop_top": f"/api/v1/stats/shops/{s.shop_id}/top-products",
        "creator_top": f"/api/v1/stats/creators/{s.creator_id}/top-products",
    }


CREATOR_SIDE = {"anchor", "live_anchor", "video", "live", "creator", "heatmap", "video_top", "live_top",
                "creator_top"}
SELLER_SIDE = {"product", "shop", "shop_top"}


async def test_who_may_read_what(world: tuple[Seed, Seed, People]) -> None:
    mine, _, p = world
    for name, path in paths(mine).items():
        expected = {
            "anon": 401, "analyst": 200, "admin": 200,
            "creator": 200 if name in CREATOR_SIDE else 404,
            "other_creator": 404,
            "seller": 200 if name in SELLER_SIDE else 404,
            "other_seller": 404,
        }
        for who, api in p.all.items():
            for suffix in ("", ".csv"):
                reply = await api.get(path + suffix)
                assert reply.status == expected[who], (name, who, suffix, reply.status, reply.body)
                if reply.status >= 400:
                    assert reply.body["error"]["code"] in ("not_found", "unauthorized")


async def test_missing_entities_are_404_even_for_analysts(world: tuple[Seed, Seed, People]) -> None:
    _, _, p = world
    for segment in ("anchors", "videos", "live", "products", "shops", "creators"):
        assert (await p.analyst.get(f"/api/v1/stats/{segment}/999999")).status == 404
    for path in ("videos/999999/heatmap", "videos/999999/top-anchors", "shops/999999/top-products"):
        assert (await p.admin.get(f"/api/v1/stats/{path}")).status == 404


async def test_plan_stats_for_the_plan_seller_analysts_and_admins(world: tuple[Seed, Seed, People]) -> None:
    _, _, p = world
    shop = await p.seller.post("/api/v1/shops", {"name": "Plan shop", "domains": ["plans.example"]})
    product = await p.seller.post(f"/api/v1/shops/{shop.body['id']}/products",
                                  {"title": "P", "url": "https://plans.example/p"})
    now = datetime.now(UTC)
    plan = await p.seller.post("/api/v1/plans", {
        "name": "Stats plan", "kind": "open", "rate": "10.00", "products": [{"product_id": product.body["id"]}],
        "starts_at": now.isoformat(), "ends_at": (now + timedelta(days=9)).isoformat()})
    assert plan.status == 201, plan.body
    path = f"/api/v1/stats/plans/{plan.body['id']}"
    assert (await p.seller.get(path)).status == 200
    assert (await p.analyst.get(path)).status == 200
    assert (await p.admin.get(f"{path}.csv")).status == 200
    for who in (p.other_seller, p.creator):
        assert (await who.get(path)).status == 404
    assert (await p.analyst.get(f"/api/v1/stats/plans/{plan.body['id'] + 1000}")).status == 404  # no such plan


async def test_documents_series_heatmap_top_and_csv(world: tuple[Seed, Seed, People], redis: Redis,
                                                    pool: asyncpg.Pool, settings: Settings) -> None:
    mine, _, p = world
    minute = (int(time.time()) // 60 - 5) * 60
    a0, a1 = mine.video_anchor_ids
    docs = []
    for i in range(6):  # anchor 0: 6 human clicks at 3.x s, 2 minutes apart
        docs.append(event(ts_ms=(minute + (i % 2) * 120) * 1000 + i, anchor_id=a0, video_id=mine.video_id,
                          product_id=mine.product_ids[0], shop_id=mine.shop_id, creator_id=mine.creator_id,
                          playback_s=3.2 + i / 10, viewer_id=i % 4))
    for i in range(3):  # anchor 1: 3 human clicks at 15 s
        docs.append(event(ts_ms=minute * 1000 + 500 + i, anchor_id=a1, video_id=mine.video_id,
                          product_id=mine.product_ids[1], shop_id=mine.shop_id, creator_id=mine.creator_id,
                          playback_s=15.0, viewer_id=10 + i, outcome="fallback"))
    docs.append(event(ts_ms=minute * 1000, anchor_id=a1, video_id=mine.video_id, ua_class="link_preview",
                      product_id=mine.product_ids[1], shop_id=mine.shop_id, creator_id=mine.creator_id))
    await write_events(redis, docs)
    await count(settings, redis, pool)

    reply = await p.creator.get(f"/api/v1/stats/videos/{mine.video_id}?granularity=minute"
                                f"&from={minute}&to={minute + 180}")
    assert reply.status == 200, reply.body
    body = reply.body
    assert body["totals"]["clicks"] == 10
    assert body["totals"]["by_class"] == {"human": 9, "bot": 0, "link_preview": 1}
    assert body["totals"]["by_outcome"]["fallback"] == 3
    assert body["totals"]["by_class_outcome"]["human"]["redirected"] == 6
    assert body["unique_viewers"] == 7  # 4 + 3 humans; the link preview is not a viewer
    assert [s["clicks"] for s in body["series"]] == [7, 0, 3]
    assert body["series"][0]["t"].endswith("Z") and body["bucket_s"] == 60

    day = await p.creator.get(f"/api/v1/stats/videos/{mine.video_id}?granularity=day")
    assert day.body["series"][-1]["clicks"] == 10 and day.body["series"][-1]["unique_viewers"] == 7

    heat = await p.creator.get(f"/api/v1/stats/videos/{mine.video_id}/heatmap")
    assert heat.body["cells"] == [{"second": 3, "clicks": 6}, {"second": 15, "clicks": 3}]

    top = await p.creator.get(f"/api/v1/stats/videos/{mine.video_id}/top-anchors?limit=1")
    assert top.body["items"] == [{"rank": 1, "anchor_id": a0, "clicks": 6, "impressions": 0, "ctr": None}]
    shop_top = await p.seller.get(f"/api/v1/stats/shops/{mine.shop_id}/top-products")
    assert [i["product_id"] for i in shop_top.body["items"]] == [mine.product_ids[0], mine.product_ids[1]]

    csv_reply = await p.creator.get(f"/api/v1/stats/anchors/{a1}.csv?granularity=minute&from={minute}"
                                    f"&to={minute + 60}")
    assert csv_reply.headers["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(csv_reply.body)))
    assert len(rows) == 1
    assert rows[0]["clicks"] == "4" and rows[0]["human_fallback"] == "3" and rows[0]["link_preview"] == "1"
    assert csv_reply.body.endswith("\r\n") and "\n" not in csv_reply.body.replace("\r\n", "")  # RFC 4180
    heat_csv = await p.creator.get(f"/api/v1/stats/videos/{mine.video_id}/heatmap.csv")
    assert heat_csv.body == "second,clicks,impressions\r\n3,6,0\r\n15,3,0\r\n"
    top_csv = await p.creator.get(f"/api/v1/stats/creators/{mine.creator_id}/top-products.csv")
    assert top_csv.body.split("\r\n")[0] == "rank,product_id,clicks,impressions,ctr"
    # the JSON operations answer JSON whatever the query says (CSV has its own paths)
    assert (await p.creator.get(f"/api/v1/stats/anchors/{a1}?format=csv")).headers["Content-Type"] == \
        "application/json"


@pytest.mark.parametrize(("query", "status", "code"), [
    ("granularity=week", 422, "validation_failed"),
    ("from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", 422, "validation_failed"),
    ("from=yesterday", 422, "validation_failed"),
    ("granularity=minute&from=0", 422, "validation_failed"),
])
async def test_bad_parameters(world: tuple[Seed, Seed, People], query: str, status: int, code: str) -> None:
    mine, _, p = world
    reply = await p.analyst.get(f"/api/v1/stats/videos/{mine.video_id}?{query}")
    assert (reply.status, reply.error_code) == (status, code), reply.body
    assert (await p.analyst.get("/api/v1/stats/videos/abc")).status == 400
    assert (await p.analyst.get(f"/api/v1/stats/shops/{mine.shop_id}/top-products?limit=0")).status == 400
