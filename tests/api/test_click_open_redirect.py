"""Never an open redirect: nothing in the request can move the Location off the stored product
URL. Requests are written byte for byte on a raw socket, so no client normalizes them first."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from aiohttp.test_utils import TestServer

from support.api import AccountFactory
from support.click_data import insert_anchor, insert_video, make_shop, video_anchor

PRODUCT = "https://acme.example/p/shoe?color=red"
CODE = "OpenRdr01"


async def raw_request(server: TestServer, request_line: str,
                      headers: list[str]) -> tuple[int, dict[str, str]]:
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        lines = [request_line, f"Host: {server.host}:{server.port}", *headers, "Connection: close", "", ""]
        writer.write("\r\n".join(lines).encode("latin-1"))
        await writer.drain()
        head = (await reader.read(65536)).split(b"\r\n\r\n", 1)[0].decode("latin-1")
    finally:
        writer.close()
    status_line, *header_lines = head.split("\r\n")
    found: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        found[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), found


# (path and query, extra headers)
ATTACKS: list[tuple[str, list[str]]] = [
    (f"/r/{CODE}?url=https://evil.example/", []),
    (f"/r/{CODE}?next=//evil.example", []),
    (f"/r/{CODE}?redirect=https%3A%2F%2Fevil.example", []),
    (f"/r/{CODE}?t=//evil.example", []),
    (f"/r/{CODE}?utm_source=evil&sl_click=evil", []),
    (f"/r/{CODE}#@evil.example", []),
    (f"/r/{CODE}", ["Host: evil.example"]),
    (f"/r/{CODE}", ["X-Forwarded-Host: evil.example"]),
    (f"/r/{CODE}", ["X-Forwarded-Proto: javascript"]),
    (f"/r/{CODE}", ["Forwarded: host=evil.example;proto=https"]),
    (f"/r/{CODE}", ["Referer: https://evil.example/"]),
    (f"/r/{CODE}", ["X-Original-URL: https://evil.example/"]),
    (f"/r/{CODE}", ["X-Rewrite-URL: //evil.example"]),
    (f"/r/{CODE}?%0d%0aLocation:%20https://evil.example", []),
    (f"/r/{CODE}%0d%0aLocation:%20https://evil.example", []),
    (f"/r/{CODE}%0aSet-Cookie:%20x=1", []),
    ("/r//evil.example", []),
    ("/r/%2F%2Fevil.example", []),
    ("/r/https:%2F%2Fevil.example", []),
    (f"/r/{CODE}/..%2F..%2F%2Fevil.example", []),
    (f"/r/{CODE}%2F..%2F..%2Fevil.example", []),
    (f"/r/{CODE}@evil.example", []),
    (f"/r/{CODE}%40evil.example", []),
    (f"/r/{CODE};evil.example", []),
    (f"/r/{CODE}\\evil.example", []),
    (f"/r/{CODE}%5Cevil.example", []),
    (f"/r/{CODE}%00evil.example", []),
    (f"//r/{CODE}", []),
    ("/r/..%2F..%2Fapi%2Fv1%2Fme", []),
    (f"/r/{CODE.lower()}", []),
    (f"/r/%E2%80%AE{CODE}", []),
    (f"http://evil.example/r/{CODE}", []),
    ("/r/%ED%A0%80%FF%FE", []),
    ("/r/" + "A" * 5000, []),
]


@pytest.mark.parametrize(("target", "headers"), ATTACKS)
async def test_request_cannot_choose_the_target(make_account: AccountFactory, server: TestServer, pool: asyncpg.Pool,
                                                target: str, headers: list[str]) -> None:
    shop = await make_shop(await make_account("seller"), urls=(PRODUCT,))
    assert shop.seller.account_id is not None
    video_id = await insert_video(pool, shop.seller.account_id)
    await insert_anchor(pool, product_id=shop.product_ids[0], publisher_id=shop.seller.account_id,
                        video_id=video_id, code=CODE)
    status, found = await raw_request(server, f"GET {target} HTTP/1.1", headers)
    assert "set-cookie" not in found or "\n" not in found["set-cookie"]
    assert "evil" not in found.get("location", "")
    if status == 302:
        location = found["location"]
        assert location.startswith(PRODUCT + "&utm_source=shoplink&utm_medium=video&"), location
        assert f"&utm_content={CODE}&sl_click=" in location
        assert location.count("sl_click=") == 1 and location.count("utm_source=") == 1
    else:
        assert status in (400, 404), status
        assert "location" not in found


async def test_a_stored_url_off_the_shop_domains_is_never_a_target(
        make_account: AccountFactory, server: TestServer, pool: asyncpg.Pool) -> None:
    """Even a product row changed behind the catalog's back is re-checked when cached."""
    shop = await make_shop(await make_account("seller"), urls=(PRODUCT,),
                           fallback_url="https://acme.example/")
    _, code, _ = await video_anchor(pool, shop)
    await pool.execute("UPDATE products SET url = 'https://evil.example/p' WHERE id = $1",
                       shop.product_ids[0])
    status, found = await raw_request(server, f"GET /r/{code} HTTP/1.1", [])
    assert status == 302 and found["location"].startswith("https://acme.example/?utm_source=shoplink&")
    await pool.execute("UPDATE shops SET fallback_url = 'https://evil.example/' WHERE id = $1", shop.shop_id)
    _, code2, _ = await video_anchor(pool, shop)
    status, found = await raw_request(server, f"GET /r/{code2} HTTP/1.1", [])
    assert status == 410 and "location" not in found
