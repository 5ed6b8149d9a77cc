"""Public hot routes on the fast path (shoplink/fastpath.py) keep errors and CORS; the server-level
dispatch takes only plain requests and answers like the route."""

from __future__ import annotations

import re

import asyncpg
import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from aiohttp.web_server import Server
from redis.asyncio import Redis
from yarl import URL

from shoplink.anchors.views import timeline
from shoplink.clicks.views import click
from shoplink.errors import error_middleware
from shoplink.fastpath import _FAST, install
from shoplink.keys import DB_POOL

from support.api import AccountFactory, Api, ServerFactory
from support.click_data import make_shop, video_anchor, wait_for_events


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


async def test_click_errors_are_rendered_on_the_fast_path(start_server: ServerFactory, http: ClientSession) -> None:
    server = await start_server()
    await server.app[DB_POOL].close()  # this instance cannot reach PostgreSQL any more
    reply = await Api(http, str(server.make_url("")), None).get("/r/Abcdef123")
    assert reply.status == 503 and reply.error_code == "resolver_unavailable"
    assert reply.headers["Content-Type"].startswith("application/json")
    assert "Access-Control-Allow-Origin" not in reply.headers and "X-Request-Id" not in reply.headers


# ---- the server-level dispatch (fastpath.install) ---------------------------------------------

async def _echo_app_and_dispatch() -> tuple[TestServer, list[str]]:
    """A real server: the app answers `/x/{seg}` as "app:...", the dispatch as "fast:..."."""
    app = web.Application(middlewares=[error_middleware])

    async def routed(request: web.Request) -> web.Response:
        return web.Response(text=f"app:{request.match_info['seg']}")

    app.router.add_get("/x/{seg}", routed)
    calls: list[str] = []

    async def fast(request: web.BaseRequest, segment: str) -> web.Response:
        calls.append(segment)
        if segment == "missing":
            raise web.HTTPNotFound()
        if segment == "boom":
            raise RuntimeError("a bug in a fast handler")
        return web.Response(text=f"fast:{segment}")

    async def routed_exact(request: web.Request) -> web.Response:
        return web.Response(text=f"app:{request.method.lower()}")

    app.router.add_post("/e/x", routed_exact)
    app.router.add_get("/e/x", routed_exact)

    async def exact(request: web.BaseRequest) -> web.Response:
        if await request.read() == b"boom":
            raise ValueError("a bug in an exact handler")
        return web.Response(text="fast:post")

    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    assert server.runner is not None and server.runner.server is not None
    install(server.runner.server, {"/x/": fast}, exact={("POST", "/e/x"): exact})
    return server, calls


@pytest.mark.parametrize(("method", "path", "status", "body"), [
    ("GET", "/x/abc", 200, "fast:abc"),
    ("GET", "/x/Ab-c_9?q=1&t=2", 200, "fast:Ab-c_9"),
    ("HEAD", "/x/abc", 200, None),
    # anything that is not plain goes to the app, which decodes, normalises and refuses
    ("GET", "/x/a%62c", 200, "app:abc"),
    ("GET", "/x/abc/", 404, None),
    ("GET", "/x/", 404, None),
    ("GET", "//x/abc", 404, None),
    ("GET", "/x/a.c", 200, "app:a.c"),
    ("GET", "/x/" + "a" * 129, 200, "app:" + "a" * 129),
    ("POST", "/x/abc", 405, None),
    ("GET", "/y/abc", 404, None),
    # an exact route: its method and path as written, a query allowed
    ("POST", "/e/x", 200, "fast:post"),
    ("POST", "/e/x?a=1", 200, "fast:post"),
    ("GET", "/e/x", 200, "app:get"),
    ("POST", "/e/%78", 200, "app:post"),
    ("POST", "/e/x/", 404, None),
])
async def test_the_dispatch_takes_only_plain_requests(method: str, path: str, status: int,
                                                     body: str | None) -> None:
    server, _ = await _echo_app_and_dispatch()
    try:
        url = URL(f"http://127.0.0.1:{server.port}{path}", encoded=True)  # sent exactly as written
        async with ClientSession() as http, http.request(method, url, allow_redirects=False) as reply:
            assert reply.status == status
            if body is not None:
                assert await reply.text() == body
    finally:
        await server.close()


async def test_errors_of_a_dispatched_handler_are_rendered_as_everywhere_else() -> None:
    server, calls = await _echo_app_and_dispatch()
    try:
        async with ClientSession() as http:
            api = Api(http, f"http://127.0.0.1:{server.port}", None)
            missing = await api.get("/x/missing", headers={"Accept": "application/json"})
            assert missing.status == 404 and missing.error_code == "not_found"
            boom = await api.get("/x/boom", headers={"Accept": "application/json"})
            assert boom.status == 500 and boom.error_code == "internal_error"
            assert "a bug" not in str(boom.body)  # nothing internal leaks
            exact = await api.request("POST", "/e/x", data=b"boom")
            assert exact.status == 500 and exact.error_code == "internal_error"
        assert calls == ["missing", "boom"]
    finally:
        await server.close()


async def test_a_fast_prefix_is_one_path_segment() -> None:
    server = Server(lambda request: None)  # type: ignore[arg-type,return-value]
    for prefix in ("/r", "r/", "/a/b/", "/"):
        with pytest.raises(ValueError, match="fast prefix"):
            install(server, {prefix: None})  # type: ignore[dict-item]
    for path in ("/e/x?a=1", "e/x", "/e/%78", "/e//x", "/"):
        with pytest.raises(ValueError, match="fast exact path"):
            install(server, {}, exact={("POST", path): None})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="never reached"):
        install(server, {"/e/": None}, exact={("POST", "/e/x"): None})  # type: ignore[dict-item]


async def test_a_click_answers_the_same_through_the_dispatch_and_through_the_route(
        anon: Api, make_account: AccountFactory, pool: asyncpg.Pool, redis: Redis) -> None:
    """`/r/{code}` with a percent-encoded character is not plain: the router decodes it and the
    route (on the app's fast path) answers; the same anchor, the same kind of answer, an event each."""
    shop = await make_shop(await make_account("seller"))
    _, code, _ = await video_anchor(pool, shop)
    direct = await anon.get(f"/r/{code}?t=3")
    encoded = await anon.get(URL(f"{anon.base_url}/r/%{ord(code[0]):02X}{code[1:]}?t=3", encoded=True))
    for reply in (direct, encoded):
        assert reply.status == 302 and "X-Request-Id" not in reply.headers
        assert reply.headers["Cache-Control"] == "no-store, private"
        assert reply.headers["Set-Cookie"].startswith("sl_vid=")
    strip = re.compile(r"sl_click=[0-9A-Z]{26}")
    assert strip.sub("", direct.headers["Location"]) == strip.sub("", encoded.headers["Location"])
    events = await wait_for_events(redis, 2)
    assert [e["code"] for e in events] == [code, code]
    assert [e["playback_s"] for e in events] == [3.0, 3.0]
