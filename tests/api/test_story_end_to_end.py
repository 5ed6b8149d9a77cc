"""The whole affiliate story over the real HTTP API: a seller, two creators and a viewer.

plan → join → upload and anchor → click (twice, two creators) → sale → report. Only the viewer's
clicks and the seller's sale are in the story; everything in between is the running service.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import ClientSession, CookieJar

from support.api import AccountFactory, Api
from support.video_data import make_video, shop_with_products, upload
from support.wait import until

CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/131.0.0.0 Safari/537.36")


async def _report(seller: Api, plan_id: int, want_clicks: int) -> dict[str, Any]:
    """The plan's report once `shoplink count` has attributed `want_clicks` clicks."""
    async def report() -> dict[str, Any] | None:
        reply = await seller.get(f"/api/v1/reports/affiliates?group_by=plan&plan_id={plan_id}")
        assert reply.status == 200, reply.body
        items = reply.body["items"]
        return dict(items[0]) if items and items[0]["clicks"]["total"] >= want_clicks else None

    return await until(report, timeout=30, interval=0.1)


@pytest.mark.usefixtures("count_worker")  # attributes the plan clicks, as deployed
async def test_plan_join_anchor_click_sale_report(make_account: AccountFactory, base_url: str, tmp_path: Path) -> None:
    seller = await make_account("seller", name="Brand")
    alice = await make_account("creator", name="Alice")
    bob = await make_account("creator", name="Bob")
    products = await shop_with_products(seller, count=2)
    shop_id = products[0]["shop_id"]
    now = datetime.now(UTC)
    plan = await seller.post("/api/v1/plans", {
        "name": "Spring", "kind": "open", "rate": "10.00",
        "products": [{"product_id": products[0]["id"]}],
        "starts_at": (now - timedelta(hours=1)).isoformat(), "ends_at": (now + timedelta(days=30)).isoformat()})
    assert plan.status == 201, plan.body
    plan_id = plan.body["id"]

    video = make_video(tmp_path / "clip.mp4", seconds=4.0)
    codes = {}
    for creator in (alice, bob):
        uploaded = await upload(creator, video, title=f"{creator.account_id}'s haul")
        assert uploaded.status == 201, uploaded.body
        anchor_path = f"/api/v1/videos/{uploaded.body['id']}/anchors"
        body = {"product_id": products[0]["id"], "start_s": 0.5, "end_s": 3.0}
        assert (await creator.post(anchor_path, body)).status == 422  # not enrolled yet
        assert (await creator.post(f"/api/v1/plans/{plan_id}/join")).status == 201
        anchor = await creator.post(anchor_path, body)
        assert anchor.status == 201, anchor.body
        codes[creator.account_id] = anchor.body["code"]
        timeline = await creator.get(f"/v1/videos/{uploaded.body['id']}/anchors?at=1.0")
        assert [a["code"] for a in timeline.body["anchors"]] == [anchor.body["code"]]

    # The viewer watches Alice's video and clicks, then Bob's video and clicks: Bob's is the last click.
    async with ClientSession(cookie_jar=CookieJar(unsafe=True), headers={"User-Agent": CHROME}) as viewer:
        click_ids = []
        for creator in (alice, bob):
            async with viewer.get(f"{base_url}/r/{codes[creator.account_id]}?t=1.5",
                                  allow_redirects=False) as resp:
                assert resp.status == 302
                location = urlsplit(resp.headers["Location"])
                assert location.netloc == "shop.example"
                params = parse_qs(location.query)
                assert params["utm_campaign"] == [f"plan-{plan_id}"]
                click_ids.append(params["sl_click"][0])
            await asyncio.sleep(0.01)  # a clock: Bob's click is the later one, by its timestamp

    report = await _report(seller, plan_id, want_clicks=2)
    assert report["clicks"]["human"] == 2

    # The shop received Alice's click id with the order; the viewer's last click (Bob's) wins.
    sale = await seller.post("/api/v1/conversions", {
        "shop_id": shop_id, "order_id": "ORD-1", "amount": "59.99", "currency": "EUR",
        "click_id": click_ids[0]})
    assert sale.status == 201, sale.body
    assert sale.body["attributed"] and sale.body["creator_id"] == bob.account_id
    assert sale.body["plan_id"] == plan_id and sale.body["commission_minor"] == 600
    again = await seller.post("/api/v1/conversions", {
        "shop_id": shop_id, "order_id": "ORD-1", "amount": "59.99", "currency": "EUR",
        "click_id": click_ids[0]})
    assert again.status == 200 and again.body["id"] == sale.body["id"]

    by_creator = await bob.get("/api/v1/reports/affiliates?group_by=creator")
    assert by_creator.status == 200
    mine = by_creator.body["items"]
    assert [row["creator_id"] for row in mine] == [bob.account_id]
    assert mine[0]["conversions"] == 1 and mine[0]["sales"][0]["commission_owed"] == "6.00"
    assert (await alice.get("/api/v1/reports/affiliates?group_by=creator")).body["items"][0]["conversions"] == 0
    plan_report = await _report(seller, plan_id, want_clicks=2)
    assert plan_report["conversions"] == 1
