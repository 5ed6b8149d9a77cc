"""CORS only where viewers on other sites need it; security headers on every page.

Open (any origin, no credentials): the player script, the public viewer endpoints (`/v1/...`:
video timeline, live state and its event stream) and thumbnails, with their OPTIONS preflight.
Closed: `/r/{code}`, the management API, pages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import asyncpg
from aiohttp import ClientSession, CookieJar

from support.api import AccountFactory, Api
from support.click_data import insert_anchor, insert_video, make_shop
from support.live_data import live_with_products, open_stream, seller_with_products

ORIGIN = {"Origin": "https://shop.example"}
PREFLIGHT = {**ORIGIN, "Access-Control-Request-Method": "GET",
             "Access-Control-Request-Headers": "last-event-id"}


async def test_cors_open_on_viewer_endpoints_and_player_script(
        make_account: AccountFactory, anon: Api, pool: asyncpg.Pool, http: ClientSession,
        base_url: str) -> None:
    seller, product_ids = await seller_with_products(make_account, 1)
    live_id = await live_with_products(seller, product_ids, start=True)
    video_id = await insert_video(pool, seller.account_id or 0)
    for path in ("/v1/player.js", f"/v1/videos/{video_id}/anchors", f"/v1/live/{live_id}",
                 "/v1/videos/999/anchors"):
        reply = await anon.get(path, headers=ORIGIN)
        assert reply.status in (200, 404), (path, reply.status)
        assert reply.headers.get("Access-Control-Allow-Origin") == "*", path
        assert "Access-Control-Allow-Credentials" not in reply.headers, path
    async with open_stream(http, base_url, live_id) as stream:
        assert stream.response.headers.get("Access-Control-Allow-Origin") == "*"


async def test_preflight_answered_only_where_cors_is_open(
        make_account: AccountFactory, anon: Api, pool: asyncpg.Pool) -> None:
    seller = await make_account("seller")
    shop = await make_shop(seller)
    video_id = await insert_video(pool, seller.account_id or 0)
    _, code = await insert_anchor(pool, product_id=shop.product_ids[0], publisher_id=seller.account_id or 0,
                                  video_id=video_id)
    for path in ("/v1/player.js", f"/v1/videos/{video_id}/anchors", "/v1/live/1/events", "/v1/live/1"):
        reply = await anon.request("OPTIONS", path, headers=PREFLIGHT)
        assert reply.status == 204, path
        assert reply.headers["Access-Control-Allow-Origin"] == "*"
        assert "GET" in reply.headers["Access-Control-Allow-Methods"]
        assert "last-event-id" in reply.headers["Access-Control-Allow-Headers"].lower()
    for path in (f"/r/{code}", "/api/v1/me", "/api/v1/shops", "/studio", "/v1/no-such-thing"):
        reply = await anon.request("OPTIONS", path, headers=PREFLIGHT)
        assert reply.status in (401, 404, 405), (path, reply.status)
        assert "Access-Control-Allow-Origin" not in reply.headers, path


async def test_cors_closed_on_redirects_and_management_api(
        make_account: AccountFactory, anon: Api, pool: asyncpg.Pool) -> None:
    seller = await make_account("seller")
    shop = await make_shop(seller)
    video_id = await insert_video(pool, seller.account_id or 0)
    _, code = await insert_anchor(pool, product_id=shop.product_ids[0], publisher_id=seller.account_id or 0,
                                  video_id=video_id)
    redirect = await anon.get(f"/r/{code}", headers=ORIGIN)
    assert redirect.status == 302 and "Access-Control-Allow-Origin" not in redirect.headers
    for api, path in ((seller, "/api/v1/me"), (seller, "/api/v1/shops"), (anon, "/api/v1/me"),
                      (anon, "/signin"), (anon, "/healthz")):
        reply = await api.get(path, headers=ORIGIN)
        assert "Access-Control-Allow-Origin" not in reply.headers, path


def _assert_page_headers(headers: Mapping[str, str], path: str) -> None:
    csp = headers.get("Content-Security-Policy", "")
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if d.strip())
    assert directives.get("script-src") == "'self'", (path, csp)
    assert directives.get("style-src") == "'self'", (path, csp)
    assert directives.get("frame-ancestors") == "'none'", (path, csp)
    assert directives.get("object-src") == "'none'" and directives.get("base-uri") == "'none'", (path, csp)
    assert not re.search(r"unsafe-(inline|eval)", csp), (path, csp)
    assert headers.get("X-Frame-Options") == "DENY", path
    assert headers.get("X-Content-Type-Options") == "nosniff", path
    assert headers.get("Referrer-Policy") == "same-origin", path


async def test_security_headers_on_every_page(make_account: AccountFactory, anon: Api, base_url: str) -> None:
    seller, product_ids = await seller_with_products(make_account, 1)
    live_id = await live_with_products(seller, product_ids)
    for path in ("/signin", f"/watch/live/{live_id}", "/demo/shop/products/1"):
        reply = await anon.get(path)
        assert reply.status in (200, 404), (path, reply.status)
        assert reply.headers["Content-Type"].startswith("text/html"), path
        _assert_page_headers(reply.headers, path)
    for path in ("/demo", "/no-such-page", "/demo/shop/products/999"):  # plain-text 404s
        reply = await anon.get(path)
        assert reply.status == 404 and reply.headers.get("X-Content-Type-Options") == "nosniff", path
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as browser:
        async with browser.post(f"{base_url}/signin", data={"token": seller.token}, allow_redirects=False) as r:
            assert r.status == 303
        for path in ("/studio", "/studio/live", f"/studio/live/{live_id}", "/dashboard",
                     f"/dashboard/live/{live_id}"):
            async with browser.get(base_url + path, allow_redirects=False) as r:
                assert r.status == 200, path
                _assert_page_headers(r.headers, path)
    bad_signin = await anon.post("/signin", data={"token": "slk_wrong"})
    assert bad_signin.status == 401
    _assert_page_headers(bad_signin.headers, "POST /signin")


async def test_nosniff_on_api_and_nothing_added_to_redirects(
        make_account: AccountFactory, anon: Api, pool: asyncpg.Pool) -> None:
    seller = await make_account("seller")
    for reply in (await seller.get("/api/v1/me"), await anon.get("/api/v1/me"), await anon.get("/healthz")):
        assert reply.headers.get("X-Content-Type-Options") == "nosniff"
        assert "Content-Security-Policy" not in reply.headers  # JSON, not a page
    shop = await make_shop(seller)
    video_id = await insert_video(pool, seller.account_id or 0)
    _, code = await insert_anchor(pool, product_id=shop.product_ids[0], publisher_id=seller.account_id or 0,
                                  video_id=video_id)
    redirect = await anon.get(f"/r/{code}")
    assert redirect.status == 302
    # The redirect is a fast route: none of the middlewares' headers (no per-click work added).
    assert "Content-Security-Policy" not in redirect.headers and "X-Request-Id" not in redirect.headers
