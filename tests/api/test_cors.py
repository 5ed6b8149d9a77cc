"""Where CORS headers go (shoplink/security/cors.py): every GET/HEAD answer of the public viewer API
(timeline, live state and events, the player script, thumbnails), errors included; never the
click redirect or the management API; and no response-prepare signal that every request,
each click included, would pay for."""

from __future__ import annotations

from collections.abc import Mapping

import asyncpg
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from support.api import AccountFactory, Api
from support.click_data import insert_video, make_shop, video_anchor
from support.live_data import live_with_products, seller_with_products

ORIGIN = {"Origin": "https://shop.example"}


def has_cors(headers: Mapping[str, str]) -> bool:
    assert "Access-Control-Allow-Credentials" not in headers
    return headers.get("Access-Control-Allow-Origin") == "*"


async def test_public_viewer_endpoints_carry_cors(
        make_account: AccountFactory, anon: Api, http: ClientSession, base_url: str,
        pool: asyncpg.Pool) -> None:
    shop = await make_shop(await make_account("seller"))
    assert shop.seller.account_id is not None
    video_id = await insert_video(pool, shop.seller.account_id)
    host, ids = await seller_with_products(make_account, 1)
    live_id = await live_with_products(host, ids)
    for path, status in [("/v1/player.js", 200), (f"/v1/videos/{video_id}/anchors", 200),
                         (f"/v1/videos/{video_id}/anchors?at=1", 200), ("/v1/videos/999999999/anchors", 404),
                         ("/v1/videos/nope/anchors", 400), (f"/v1/live/{live_id}", 200),
                         ("/v1/live/999999999", 404), ("/v1/nothing-here", 404)]:
        reply = await anon.get(path, headers=ORIGIN)
        assert reply.status == status, path
        assert has_cors(reply.headers), path
        assert reply.headers["Access-Control-Expose-Headers"] == "ETag", path
        head = await anon.request("HEAD", path, headers=ORIGIN)
        assert has_cors(head.headers), path
    async with http.get(f"{base_url}/v1/live/{live_id}/events", headers=ORIGIN) as stream:
        assert stream.status == 200 and stream.headers["Content-Type"].startswith("text/event-stream")
        assert has_cors(stream.headers)


async def test_clicks_and_the_management_api_carry_no_cors(make_account: AccountFactory, anon: Api, pool: asyncpg.Pool,
                                                           server: TestServer) -> None:
    shop = await make_shop(await make_account("seller"))
    _, code, _ = await video_anchor(pool, shop)
    seller = shop.seller
    for reply in [await anon.get(f"/r/{code}", headers=ORIGIN),
                  await anon.request("HEAD", f"/r/{code}", headers=ORIGIN),
                  await anon.get("/r/NoSuchCode1", headers=ORIGIN),
                  await anon.get("/api/v1/me", headers=ORIGIN),
                  await seller.get("/api/v1/me", headers=ORIGIN),
                  await anon.request("POST", "/v1/player.js", headers=ORIGIN),
                  await anon.get("/healthz", headers=ORIGIN)]:
        assert reply.status in (200, 302, 401, 404, 405), reply.status
        assert "Access-Control-Allow-Origin" not in reply.headers
    assert len(server.app.on_response_prepare) == 0  # nothing runs for every response
