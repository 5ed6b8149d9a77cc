"""The page routes: sign-in gate, the widget script with CORS and caching, static assets."""

from __future__ import annotations

from aiohttp import ClientSession, CookieJar

from support.api import AccountFactory, Api

PAGES = ("/studio", "/studio/live", "/dashboard", "/dashboard/videos/1", "/sales", "/payouts", "/statement")
OWNED = ("/studio/videos/1", "/studio/live/1")  # others' and missing ones are 404 pages


async def test_pages_need_a_session_and_render_with_one(make_account: AccountFactory, anon: Api, base_url: str) -> None:
    for path in PAGES + OWNED:
        reply = await anon.get(path)
        assert reply.status == 303 and reply.headers["Location"] == f"/signin?next={path}", path
    creator = await make_account("creator")
    async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as browser:
        async with browser.post(f"{base_url}/signin", data={"token": creator.token}, allow_redirects=False) as r:
            assert r.status == 303
        for path in PAGES:
            async with browser.get(base_url + path, allow_redirects=False) as r:
                body = await r.text()
                assert r.status == 200, path
                csp = r.headers["Content-Security-Policy"]
                assert "script-src 'self';" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
                assert '<script type="module" src="/static/js/' in body and "<script>" not in body
        async with browser.get(f"{base_url}/dashboard/nonsense/1", allow_redirects=False) as r:
            assert r.status == 404
        for path in OWNED:
            async with browser.get(base_url + path, allow_redirects=False) as r:
                assert r.status == 404 and r.content_type == "text/html", path
                assert 'id="not-found"' in await r.text()


async def test_player_script_is_public_cacheable_and_cross_origin(anon: Api) -> None:
    reply = await anon.get("/v1/player.js", headers={"Origin": "https://shop.example"})
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/javascript")
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in reply.headers
    assert "data-shoplink-video" in reply.body
    again = await anon.get("/v1/player.js", headers={"If-None-Match": reply.headers["ETag"]})
    assert again.status == 304


async def test_public_v1_errors_carry_cors_but_private_api_does_not(anon: Api) -> None:
    reply = await anon.get("/v1/nothing-here", headers={"Origin": "https://shop.example"})
    assert reply.headers.get("Access-Control-Allow-Origin") == "*"
    private = await anon.get("/api/v1/me", headers={"Origin": "https://shop.example"})
    assert "Access-Control-Allow-Origin" not in private.headers


async def test_watch_live_page_and_vendor_chart(make_account: AccountFactory, anon: Api) -> None:
    host = await make_account("seller")
    live = await host.post("/api/v1/live", {"title": "Thursday drop"})
    reply = await anon.get(f"/watch/live/{live.body['id']}")
    assert reply.status == 200 and f'data-shoplink-live="{live.body["id"]}"' in reply.body
    assert 'src="/v1/player.js"' in reply.body and "Thursday drop" in reply.body
    for missing in ("/watch/live/999999", f"/watch/live/{live.body['id']}/replay",
                    f"/watch/live/{live.body['id']}/replay/media"):
        gone = await anon.get(missing)
        assert gone.status == 404, missing
    page = await anon.get("/watch/live/999999")
    assert page.headers["Content-Type"].startswith("text/html") and 'id="not-found"' in page.body
    chart = await anon.get("/vendor/chart.js/chart.umd.min.js")
    assert chart.status == 200, "run `npm ci` in web/ (scripts/lib/env.sh does it)"
