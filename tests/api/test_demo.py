"""`shoplink demo` seeds usable data (twice without harm) and the demo shop shows what it receives."""

from __future__ import annotations

import argparse

import asyncpg
import pytest

from shoplink.config import Settings
from shoplink.demo import seed_demo
from shoplink.web.demo_content import DEMO_PRODUCTS

from support.api import Api


async def test_demo_seed_is_repeatable(
        pool: asyncpg.Pool, settings: Settings, anon: Api, capsys: pytest.CaptureFixture[str]) -> None:
    import orjson

    demo_settings = settings.replace(allow_http_urls=True)
    await seed_demo(demo_settings, argparse.Namespace(quiet=False))
    first = orjson.loads(capsys.readouterr().out)
    await seed_demo(demo_settings, argparse.Namespace(quiet=False))
    second = orjson.loads(capsys.readouterr().out)
    assert first["shop_id"] == second["shop_id"] and len(second["product_ids"]) == len(DEMO_PRODUCTS)
    assert first["seller"]["token"] != second["seller"]["token"]  # a fresh token each time
    seller = Api(anon.session, anon.base_url, second["seller"]["token"])
    products = (await seller.get(f"/api/v1/shops/{second['shop_id']}/products")).body["items"]
    assert products[0]["url"] == "http://127.0.0.1:8080/demo/shop/products/1"


async def test_demo_product_page_shows_attribution(anon: Api) -> None:
    reply = await anon.get("/demo/shop/products/1?utm_source=shoplink&sl_click=01ABC&utm_content=<b>")
    assert reply.status == 200
    assert DEMO_PRODUCTS[0][0] in reply.body and "01ABC" in reply.body
    assert "<b>" not in reply.body and "&lt;b&gt;" in reply.body
    assert (await anon.get("/demo/shop/products/99")).status == 404
