"""Malformed, oversized and mistyped requests get clear 4xx JSON errors and store nothing."""

from __future__ import annotations

from aiohttp import ClientSession

from support.api import AccountFactory, Api, ServerFactory


async def test_malformed_json_and_wrong_content_type(make_account: AccountFactory) -> None:
    seller = await make_account("seller")
    for data, ctype, status, code in [
        (b"{not json", "application/json", 400, "malformed_json"),
        (b"", "application/json", 400, "empty_body"),
        (b'{"name": "A", "domains": ["a.example"]}', "text/plain", 415, "unsupported_media_type"),
        (b'{"name": NaN, "domains": ["a.example"]}', "application/json", 400, "malformed_json"),
        (b'[1, 2]', "application/json", 422, "validation_failed"),
        (b'{"name": "A", "domains": "a.example"}', "application/json", 422, "validation_failed"),
    ]:
        reply = await seller.post("/api/v1/shops", data=data, headers={"Content-Type": ctype})
        assert (reply.status, reply.error_code) == (status, code), (data, reply.body)
    assert (await seller.get("/api/v1/shops")).body["items"] == []


async def test_huge_numbers_are_rejected(make_account: AccountFactory) -> None:
    seller = await make_account("seller")
    shop = await seller.post("/api/v1/shops", {"name": "A", "domains": ["a.example"]})
    reply = await seller.post(f"/api/v1/shops/{shop.body['id']}/products",
                              data=b'{"title": "x", "url": "https://a.example/", "price": 1e400, "currency": "USD"}',
                              headers={"Content-Type": "application/json"})
    assert reply.status in (400, 422)


async def test_oversized_body_413(
        make_account: AccountFactory, start_server: ServerFactory, http: ClientSession) -> None:
    server = await start_server(max_body_bytes=4096)
    seller = Api(http, str(server.make_url("")), (await make_account("seller")).token)
    big = {"name": "A", "domains": ["a.example"], "fallback_url": "https://a.example/" + "x" * 5000}
    reply = await seller.post("/api/v1/shops", big)
    assert reply.status == 413 and reply.error_code == "payload_too_large"
    assert (await seller.get("/api/v1/shops")).body["items"] == []


async def test_bad_ids_and_unknown_routes(make_account: AccountFactory, anon: Api) -> None:
    seller = await make_account("seller")
    for path in ("/api/v1/shops/abc", "/api/v1/shops/0", "/api/v1/shops/-1",
                 "/api/v1/products/99999999999999999999999"):
        reply = await seller.get(path)
        assert reply.status == 400 and reply.error_code == "invalid_id", path
    missing = await seller.get("/api/v1/nothing-here")
    assert missing.status == 404 and missing.error_code == "not_found"
    wrong_method = await seller.request("PUT", "/api/v1/shops")
    assert wrong_method.status == 405 and wrong_method.error_code == "method_not_allowed"
    bad_page = await seller.get("/api/v1/shops?limit=100000")
    assert bad_page.status == 400


async def test_request_id_echoed(anon: Api) -> None:
    reply = await anon.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert reply.headers["X-Request-Id"] == "abc-123"
    assert len((await anon.get("/healthz")).headers["X-Request-Id"]) == 16
