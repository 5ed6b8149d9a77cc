"""Sign-in exchanges a token for an HttpOnly cookie; cookie-authenticated writes need the CSRF token."""

from __future__ import annotations

from aiohttp import ClientSession, CookieJar

from support.api import AccountFactory, Api


async def _signed_in(base_url: str, token: str) -> tuple[ClientSession, str]:
    session = ClientSession(cookie_jar=CookieJar(unsafe=True))
    async with session.post(f"{base_url}/signin", data={"token": token, "next": "/studio"},
                            allow_redirects=False) as resp:
        assert resp.status == 303 and resp.headers["Location"] == "/studio"
        cookie = resp.cookies["sl_session"]
        assert cookie["httponly"] and cookie["samesite"] == "Lax" and not cookie["secure"]
        assert token not in resp.headers.get("Set-Cookie", "")
    async with session.get(f"{base_url}/web/session") as resp:
        assert resp.status == 200
        csrf: str = (await resp.json())["csrf_token"]
    return session, csrf


async def test_sign_in_use_api_with_cookie_and_sign_out(make_account: AccountFactory, base_url: str) -> None:
    seller = await make_account("seller", name="Web Sam")
    session, csrf = await _signed_in(base_url, seller.token or "")
    try:
        async with session.get(f"{base_url}/api/v1/me") as resp:
            assert resp.status == 200 and (await resp.json())["name"] == "Web Sam"
        body = {"name": "Cookie shop", "domains": ["cookie.example"]}
        async with session.post(f"{base_url}/api/v1/shops", json=body) as resp:
            assert resp.status == 403 and (await resp.json())["error"]["code"] == "csrf_failed"
        async with session.post(f"{base_url}/api/v1/shops", json=body, headers={"X-CSRF-Token": "wrong"}) as resp:
            assert resp.status == 403
        async with session.post(f"{base_url}/api/v1/shops", json=body,
                                headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"}) as resp:
            assert resp.status == 403
        async with session.post(f"{base_url}/api/v1/shops", json=body, headers={"X-CSRF-Token": csrf}) as resp:
            assert resp.status == 201
        assert len((await seller.get("/api/v1/shops")).body["items"]) == 1  # only the CSRF-correct one
        async with session.post(f"{base_url}/signout", headers={"X-CSRF-Token": csrf},
                                allow_redirects=False) as resp:
            assert resp.status == 303
        async with session.get(f"{base_url}/web/session") as resp:
            assert resp.status == 401
    finally:
        await session.close()


async def test_bad_token_cross_origin_and_open_redirect_on_sign_in(make_account: AccountFactory, base_url: str,
                                                                  http: ClientSession) -> None:
    async with http.post(f"{base_url}/signin", data={"token": "slk_nope"}, allow_redirects=False) as resp:
        assert resp.status == 401 and "not valid" in await resp.text()
    seller = await make_account("seller")
    async with http.post(f"{base_url}/signin", data={"token": seller.token},
                         headers={"Origin": "https://evil.example"}, allow_redirects=False) as resp:
        assert resp.status == 403
    for evil_next in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        async with http.post(f"{base_url}/signin", data={"token": seller.token, "next": evil_next},
                             allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"] == "/studio", evil_next


async def test_a_broken_sign_in_form_is_a_400(base_url: str, http: ClientSession) -> None:
    """Bodies no browser form sends (found by schemathesis): a 400 with a code, never a 500."""
    broken = [("multipart/form-data", b"token=x"),  # no boundary
              ("multipart/form-data; boundary=zz", b"--zz\r\nContent-Disposition: form-data\r\n"),
              ("multipart/form-data; boundary=zz", b"--zz\r\nbad header line\r\n\r\nx\r\n--zz--\r\n")]
    for content_type, body in broken:
        async with http.post(f"{base_url}/signin", data=body, headers={"Content-Type": content_type},
                             allow_redirects=False) as resp:
            assert resp.status == 400, (content_type, body, resp.status, await resp.text())
            assert (await resp.json())["error"]["code"] == "malformed_form"


async def test_revoking_the_token_ends_the_session(make_account: AccountFactory, base_url: str) -> None:
    seller = await make_account("seller")
    session, _ = await _signed_in(base_url, seller.token or "")
    try:
        tokens = await seller.get(f"/api/v1/accounts/{seller.account_id}/tokens")
        await seller.delete(f"/api/v1/tokens/{tokens.body['items'][0]['id']}")
        async with session.get(f"{base_url}/api/v1/me") as resp:
            assert resp.status == 401
    finally:
        await session.close()


async def test_signin_page_renders(anon: Api) -> None:
    reply = await anon.get("/signin?next=/studio/videos/1")
    assert reply.status == 200 and 'name="token"' in reply.body and 'value="/studio/videos/1"' in reply.body
    assert "frame-ancestors 'none'" in reply.headers["Content-Security-Policy"]
