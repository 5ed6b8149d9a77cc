"""examples/report_sales.py, the external integration built on the generated Python client, run
against the real server: a shop's orders file in, conversions and the affiliate report out."""

from __future__ import annotations

import asyncio
import importlib.util
import io
from pathlib import Path
from types import ModuleType
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import ClientSession

from shoplink.paths import PROJECT_DIR

from support.api import AccountFactory, Api
from support.video_data import make_video, shop_with_products, upload
from support.wait import until

CHROME = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/131.0.0.0 Safari/537.36")


def load_example(client_package: ModuleType) -> ModuleType:
    """The example, importing the generated `shoplink_client` as an integrator's code would."""
    assert client_package.__name__ == "shoplink_client"
    path = PROJECT_DIR / "examples" / "report_sales.py"
    spec = importlib.util.spec_from_file_location("report_sales_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _click(base_url: str, code: str) -> str:
    async with ClientSession(headers={"User-Agent": CHROME}) as viewer, \
            viewer.get(f"{base_url}/r/{code}?t=1", allow_redirects=False) as resp:
        assert resp.status == 302
        return parse_qs(urlsplit(resp.headers["Location"]).query)["sl_click"][0]


@pytest.mark.usefixtures("count_worker")
async def test_report_sales_example(client_package: ModuleType, make_account: AccountFactory, base_url: str,
                                    tmp_path: Path) -> None:
    example = load_example(client_package)
    seller = await make_account("seller", name="Brand")
    creator = await make_account("creator", name="Creator")
    products = await shop_with_products(seller, count=1)
    plan = await seller.post("/api/v1/plans", {"name": "Spring", "kind": "open", "rate": "10.00",
                                               "products": [{"product_id": products[0]["id"]}]})
    assert plan.status == 201, plan.body
    assert (await creator.post(f"/api/v1/plans/{plan.body['id']}/join")).status == 201
    video = await upload(creator, make_video(tmp_path / "clip.mp4", seconds=2.0))
    anchor = await creator.post(f"/api/v1/videos/{video.body['id']}/anchors",
                                {"product_id": products[0]["id"], "start_s": 0.0, "end_s": 2.0})
    assert anchor.status == 201, anchor.body
    click_id = await _click(base_url, anchor.body["code"])
    await _attributed(seller, plan.body["id"])

    orders = tmp_path / "orders.csv"
    orders.write_text(f"order_id,amount,currency,click_id\r\nORD-1,59.99,EUR,{click_id}\r\nORD-2,5.00,EUR,\r\n")
    argv = ["--base-url", base_url, "--token", seller.token, "--shop", str(products[0]["shop_id"]), str(orders)]
    out = io.StringIO()
    assert await asyncio.to_thread(example.main, argv, out) == 0
    lines = out.getvalue().splitlines()
    assert lines[0] == (f"ORD-1: 59.99 EUR, credited to creator {creator.account_id}, plan {plan.body['id']}: "
                        "commission 6.00 EUR")
    assert lines[1] == "ORD-2: skipped, no click id"
    assert f"  plan {plan.body['id']}: 1 human clicks, 1 sales: 59.99 EUR (owed 6.00)" in lines
    again = io.StringIO()  # a second run reports nothing twice
    assert await asyncio.to_thread(example.main, argv, again) == 0
    assert again.getvalue().splitlines()[0].endswith("(already reported)")


async def _attributed(seller: Api, plan_id: int) -> None:
    async def clicked() -> bool:
        reply = await seller.get(f"/api/v1/reports/affiliates?group_by=plan&plan_id={plan_id}")
        return bool(reply.body["items"]) and reply.body["items"][0]["clicks"]["total"] == 1

    await until(clicked, timeout=30, interval=0.1)
