"""The click's 302 written as one preformatted message (clicks/redirect.py): on a kept-alive
HTTP/1.1 connection it must be a well-formed response whose headers parse exactly as aiohttp's
own would, followed by the next response; other requests take aiohttp's regular path. The
open-redirect battery runs again here over kept-alive connections (it uses `Connection: close`)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http.cookies import SimpleCookie

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from api.test_click_open_redirect import ATTACKS, CODE, PRODUCT
from shoplink.aiohttp_internals import PreformattedResponse
from shoplink.clicks.redirect import http_date, redirect_message
from shoplink.errors import Handler

from support.api import AccountFactory
from support.click_data import insert_anchor, insert_video, make_shop, stream_entries, video_anchor, wait_for_events

Head = tuple[str, list[tuple[str, str]]]


async def read_head(reader: asyncio.StreamReader) -> Head:
    """One response's status line and headers; its body must be empty (Content-Length: 0)."""
    raw = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status_line, *lines = raw[:-4].split("\r\n")
    headers = []
    for line in lines:
        name, sep, value = line.partition(": ")
        assert sep and name and "\r" not in value and "\n" not in value, line
        headers.append((name.lower(), value))
    return status_line, headers


def one(headers: list[tuple[str, str]], name: str) -> str:
    values = [v for n, v in headers if n == name]
    assert len(values) == 1, (name, headers)
    return values[0]


def check_viewer_cookie(value: str) -> str:
    cookie = SimpleCookie()
    cookie.load(value)
    morsel = cookie["sl_vid"]
    assert len(morsel.value) == 32 and int(morsel.value, 16) >= 0
    assert morsel["httponly"] is True and morsel["samesite"] == "Lax" and morsel["path"] == "/"
    assert morsel["max-age"] == "63072000" and not morsel["secure"]  # served over http
    return morsel.value


async def test_kept_alive_redirects_are_complete_messages_one_after_the_other(
        make_account: AccountFactory, server: TestServer, pool: asyncpg.Pool, redis: Redis) -> None:
    shop = await make_shop(await make_account("seller"))
    _, code, _ = await video_anchor(pool, shop)
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        request = f"GET /r/{code} HTTP/1.1\r\nHost: x\r\nUser-Agent: Mozilla/5.0 (iPhone)\r\n\r\n"
        writer.write(request.encode() * 2)  # pipelined: the second answer follows the first
        await writer.drain()
        heads = [await read_head(reader), await read_head(reader)]
        writer.write(f"GET /r/{code} HTTP/1.1\r\nHost: x\r\nCookie: sl_vid={'a' * 32}\r\n\r\n".encode())
        await writer.drain()
        returning = await read_head(reader)
    finally:
        writer.close()
    cookies = []
    for status_line, headers in heads:
        assert status_line == "HTTP/1.1 302 Found"
        assert {n for n, _ in headers} == {"cache-control", "content-length", "server", "location",
                                           "set-cookie", "date"}
        assert one(headers, "cache-control") == "no-store, private"
        assert one(headers, "content-length") == "0"
        assert one(headers, "location").startswith("https://acme.example/p/shoe?color=red&utm_source=shoplink&")
        assert abs(parsedate_to_datetime(one(headers, "date")) - datetime.now(UTC)) < timedelta(minutes=1)
        cookies.append(check_viewer_cookie(one(headers, "set-cookie")))
    assert cookies[0] != cookies[1]
    assert heads[0][1] != heads[1][1]  # each its own click id
    assert returning[0] == "HTTP/1.1 302 Found" and "set-cookie" not in dict(returning[1])
    await wait_for_events(redis, 3)
    events = [e for _, e in await stream_entries(redis)]
    ids = {one(h, "location").split("sl_click=")[1].split("#")[0] for _, h in [*heads, returning]}
    assert {e["event_id"] for e in events} == ids and len(ids) == 3


@pytest.mark.parametrize(("request_line", "extra", "status_line"), [
    ("GET {path} HTTP/1.0", [], "HTTP/1.0 302 Found"),
    ("GET {path} HTTP/1.1", ["Connection: close"], "HTTP/1.1 302 Found"),
    ("HEAD {path} HTTP/1.1", [], "HTTP/1.1 302 Found"),
])
async def test_other_requests_take_the_regular_response_path(
        make_account: AccountFactory, server: TestServer, pool: asyncpg.Pool, request_line: str, extra: list[str],
        status_line: str) -> None:
    shop = await make_shop(await make_account("seller"))
    _, code, _ = await video_anchor(pool, shop)
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        lines = [request_line.format(path=f"/r/{code}"), "Host: x", *extra, "", ""]
        writer.write("\r\n".join(lines).encode())
        await writer.drain()
        got_status, headers = await read_head(reader)
        closing = extra or request_line.endswith("1.0")
        if closing:
            assert await reader.read() == b""  # the server closed the connection
    finally:
        writer.close()
    assert got_status == status_line
    assert one(headers, "location").startswith("https://acme.example/p/shoe?color=red&utm_source=shoplink&")
    assert one(headers, "cache-control") == "no-store, private"
    check_viewer_cookie(one(headers, "set-cookie"))


@pytest.mark.parametrize(("target", "headers"), ATTACKS)
async def test_request_cannot_choose_the_target_on_a_kept_alive_connection(
        make_account: AccountFactory, server: TestServer, pool: asyncpg.Pool, target: str, headers: list[str]) -> None:
    shop = await make_shop(await make_account("seller"), urls=(PRODUCT,))
    assert shop.seller.account_id is not None
    video_id = await insert_video(pool, shop.seller.account_id)
    await insert_anchor(pool, product_id=shop.product_ids[0], publisher_id=shop.seller.account_id,
                        video_id=video_id, code=CODE)
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        lines = [f"GET {target} HTTP/1.1", f"Host: {server.host}:{server.port}", *headers, "", ""]
        writer.write("\r\n".join(lines).encode("latin-1"))
        await writer.drain()
        status_line, found = await read_head(reader)
    finally:
        writer.close()
    status = int(status_line.split()[1])
    location = dict(found).get("location", "")
    assert "evil" not in location and len([n for n, _ in found if n == "location"]) <= 1
    assert len([n for n, _ in found if n == "set-cookie"]) <= 1
    if status == 302:
        assert location.startswith(PRODUCT + "&utm_source=shoplink&utm_medium=video&"), location
        assert location.count("sl_click=") == 1 and f"&utm_content={CODE}&sl_click=" in location
    else:
        assert status in (400, 404), status
        assert not location


async def test_a_stored_url_with_a_line_break_is_never_written_into_the_message(
        make_account: AccountFactory, server: TestServer, pool: asyncpg.Pool) -> None:
    """A row changed behind the catalog's back cannot split the preformatted response."""
    shop = await make_shop(await make_account("seller"))
    _, code, _ = await video_anchor(pool, shop)
    await pool.execute("UPDATE products SET url = $2 WHERE id = $1", shop.product_ids[0],
                       "https://acme.example/p\r\nSet-Cookie: x=1")
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(f"GET /r/{code} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await writer.drain()
        status_line, found = await read_head(reader)
    finally:
        writer.close()
    assert status_line.split()[1] == "410" and "location" not in dict(found)
    assert [v for n, v in found if n == "set-cookie"] and all(v.startswith("sl_vid=") for n, v in found
                                                              if n == "set-cookie")


def test_redirect_message_and_date() -> None:
    message = redirect_message("https://a.example/p?sl_click=X", "sl_vid=ab; Path=/", 0)
    assert message.startswith(b"HTTP/1.1 302 Found\r\n") and message.endswith(b"\r\n\r\n")
    assert message.count(b"\r\n\r\n") == 1
    assert b"\r\nLocation: https://a.example/p?sl_click=X\r\n" in message
    assert b"\r\nSet-Cookie: sl_vid=ab; Path=/\r\n" in message
    assert b"\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n" in message
    assert b"Set-Cookie" not in redirect_message("https://a.example/", None, 0)
    assert http_date(86400) == "Fri, 02 Jan 1970 00:00:00 GMT" and http_date(0).endswith("1970 00:00:00 GMT")


async def test_headers_added_by_signals_and_middlewares_are_still_written() -> None:
    """Not used by shoplink today; keeps the preformatted message honest if someone adds one."""
    @web.middleware
    async def tag(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        response.headers["X-Middleware"] = "yes"
        return response

    async def signal(request: web.Request, response: web.StreamResponse) -> None:
        response.headers["X-Signal"] = "yes"

    async def redirect(request: web.Request) -> web.StreamResponse:
        return PreformattedResponse(302, redirect_message("https://a.example/p", None, 0))

    app = web.Application(middlewares=[tag])
    app.router.add_get("/r/{code}", redirect)
    app.on_response_prepare.append(signal)
    async with TestServer(app) as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        try:
            writer.write(b"GET /r/x HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
            await writer.drain()
            heads = [await read_head(reader), await read_head(reader)]
        finally:
            writer.close()
    for status_line, headers in heads:
        assert status_line == "HTTP/1.1 302 Found" and one(headers, "location") == "https://a.example/p"
        assert one(headers, "x-middleware") == "yes" and one(headers, "x-signal") == "yes"
