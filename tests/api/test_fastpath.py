"""Public hot routes on the fast path (shoplink/fastpath.py) keep errors and CORS."""

from __future__ import annotations

from aiohttp import ClientSession

from shoplink.anchors.views import timeline
from shoplink.clicks.views import click
from shoplink.fastpath import _FAST
from shoplink.keys import DB_POOL

from support.api import Api


def test_hot_public_routes_are_on_the_fast_path() -> None:
    assert _FAST[click] is False and _FAST[timeline] is True  # only the viewer API gets CORS


async def test_timeline_errors_are_rendered_with_cors_and_no_request_id(anon: Api) -> None:
    missing = await anon.get("/v1/videos/999999999/anchors?at=1", headers={"Origin": "https://shop.example"})
    assert missing.status == 404 and missing.error_code == "not_found"
    assert missing.headers["Access-Control-Allow-Origin"] == "*"
    assert "X-Request-Id" not in missing.headers
    bad = await anon.get("/v1/videos/nope/anchors", headers={"Origin": "https://shop.example"})
    assert 400 <= bad.status < 500 and bad.error_code is not None
    assert bad.headers["Access-Control-Allow-Origin"] == "*"


async def test_a_session_cookie_does_not_matter_on_the_fast_path(anon: Api) -> None:
    reply = await anon.get("/v1/videos/999999999/anchors", headers={"Cookie": "sl_session=garbage"})
    assert reply.status == 404 and reply.error_code == "not_found"


async def test_other_routes_still_get_the_chain(anon: Api) -> None:
    reply = await anon.get("/healthz")
    assert len(reply.headers["X-Request-Id"]) == 16


async def test_click_errors_are_rendered_on_the_fast_path(start_server, http: ClientSession) -> None:
    server = await start_server()
    await server.app[DB_POOL].close()  # this instance cannot reach PostgreSQL any more
    reply = await Api(http, str(server.make_url("")), None).get("/r/Abcdef123")
    assert reply.status == 503 and reply.error_code == "resolver_unavailable"
    assert reply.headers["Content-Type"].startswith("application/json")
    assert "Access-Control-Allow-Origin" not in reply.headers and "X-Request-Id" not in reply.headers
