"""POST /v1/events: what lands on the event streams (checked against
schemas/events/stream_batch.schema.json), CORS, bad bodies, and the forged-event limits."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import orjson
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis
from yarl import URL

from api.test_click_redirect_message import one, read_head
from shoplink.funnel.validate import Impression, events_of
from shoplink.keys import FUNNEL

from support.api import METRICS_AUTH, AccountFactory, Api, ServerFactory
from support.click_data import insert_anchor, insert_live, make_shop, stream_events, video_anchor
from support.funnel_data import beacon, event_batches, page_view, wait_for_player_events


async def test_impression_view_and_progress_reach_the_event_streams(
        make_account: AccountFactory, anon: Api, pool: asyncpg.Pool, redis: Redis) -> None:
    shop = await make_shop(await make_account("seller"))
    anchor_id, code, video_id = await video_anchor(pool, shop, duration_s=40)
    reply = await beacon(anon, [
        {"type": "view", "video": video_id, "t": 0},
        {"type": "impression", "code": code, "t": 2.5},
        {"type": "progress", "video": video_id, "q": 25, "t": 10.1},
    ], headers={"Origin": "https://shop.example", "Referer": "https://shop.example/p"})
    assert reply.status == 204, reply.body
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
    events = await wait_for_player_events(redis, 3)
    by_type = {e["type"]: e for e in events}
    imp = by_type["impression"]
    assert (imp["anchor_id"], imp["video_id"], imp["product_id"], imp["shop_id"], imp["creator_id"]) == (
        anchor_id, video_id, shop.product_ids[0], shop.shop_id, shop.seller.account_id)
    assert imp["playback_s"] == 2.5 and imp["code"] == code
    view = by_type["view"]
    assert view["video_id"] == video_id and view["anchor_id"] is None
    assert view["creator_id"] == shop.seller.account_id
    assert by_type["progress"]["quartile"] == 25 and by_type["progress"]["playback_s"] == 10.1
    for e in events:
        batch = e["_batch"]
        assert batch["ua_class"] == "human" and batch["referrer_host"] == "shop.example"
        assert len(batch["viewer"]) == 32 and "127.0.0" not in orjson.dumps(batch).decode()
    assert await stream_events(redis) == []  # the click streams hold clicks only


async def test_live_view_and_card_impression(make_account: AccountFactory, anon: Api, pool: asyncpg.Pool,
                                             redis: Redis) -> None:
    seller = await make_account("seller")
    shop = await make_shop(seller)
    assert seller.account_id is not None
    live_id = await insert_live(pool, seller.account_id)
    anchor_id, code = await insert_anchor(pool, product_id=shop.product_ids[0],
                                          publisher_id=seller.account_id, live_session_id=live_id)
    assert (await beacon(anon, [{"type": "view", "live": live_id},
                                {"type": "impression", "code": code}])).status == 204
    events = await wait_for_player_events(redis, 2)
    assert {(e["type"], e["live_session_id"]) for e in events} == {("view", live_id), ("impression", live_id)}
    assert [e["anchor_id"] for e in events if e["type"] == "impression"] == [anchor_id]
    assert all(e["playback_s"] is not None and e["playback_s"] >= 0 for e in events)  # offset from the start


async def test_unknown_codes_repeats_and_limits_are_dropped_and_counted(
        make_account: AccountFactory, start_server: ServerFactory, http: ClientSession, pool: asyncpg.Pool,
        redis: Redis) -> None:
    server = await start_server(events_client_per_s=0.001, events_client_burst=30, events_max_per_page_view=5)
    anon = Api(http, str(server.make_url("/")), None)
    shop = await make_shop(Api.of(await make_account("seller"), str(server.make_url("/"))))
    _, code, video_id = await video_anchor(pool, shop)
    pv = page_view()
    assert (await beacon(anon, [{"type": "impression", "code": "Zzunknown1"},
                                {"type": "view", "video": 999_999},
                                {"type": "impression", "code": code},
                                {"type": "impression", "code": code}], pv=pv)).status == 204
    # the same page view again: repeats; then beyond the page view's 5 events
    assert (await beacon(anon, [{"type": "impression", "code": code},
                                {"type": "progress", "video": video_id, "q": 50},
                                {"type": "progress", "video": video_id, "q": 75}], pv=pv)).status == 204
    # 30 events of budget per client: 7 used; 23 more allowed, the rest dropped
    other = [{"type": "progress", "video": video_id, "q": q} for q in (25, 50, 75, 100)]
    for _ in range(8):
        assert (await beacon(anon, other)).status == 204
    events = await wait_for_player_events(redis, 24)
    metrics = (await anon.get("/metrics", headers=METRICS_AUTH)).body
    assert 'shoplink_player_events_dropped_total{reason="unknown"} 2' in metrics
    assert 'shoplink_player_events_dropped_total{reason="repeat"} 2' in metrics
    assert 'shoplink_player_events_dropped_total{reason="page_view_limit"} 2' in metrics
    assert 'shoplink_player_events_dropped_total{reason="client_limit"} 9' in metrics
    # streamed: one impression (first page view: the second request's one room went to a repeat),
    # then the 23 granted of the other page views
    assert "shoplink_player_events_total 24" in metrics
    total = sum(len(b["events"]) for b in await event_batches(redis))
    assert total == 24 and len(events) >= 1


async def test_bad_bodies_get_clear_errors_and_nothing_is_streamed(anon: Api, redis: Redis) -> None:
    not_json = await anon.request("POST", "/v1/events", data=b"{nope")
    assert not_json.status == 400 and not_json.error_code == "invalid_json"
    assert not_json.headers["Access-Control-Allow-Origin"] == "*"
    bad = await beacon(anon, [{"type": "impression"}, {"type": "progress", "video": 3, "q": 30}])
    assert bad.status == 422 and bad.error_code == "invalid_events"
    assert {d["field"] for d in bad.body["error"]["details"]} == {"events/0", "events/1"}
    too_many = await beacon(anon, [{"type": "view", "video": 1}] * 101)
    assert too_many.status == 422
    huge = await anon.request("POST", "/v1/events", data=b" " * (64 * 1024 + 1))
    assert huge.status == 413 and huge.error_code == "payload_too_large"
    assert await event_batches(redis) == []


async def test_preflight_allows_any_origin_to_post(anon: Api) -> None:
    reply = await anon.request("OPTIONS", "/v1/events", headers={
        "Origin": "https://shop.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert reply.status == 204
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in reply.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in reply.headers["Access-Control-Allow-Headers"]


async def test_the_server_answers_plain_beacons_before_the_app_and_the_route_the_rest_the_same(
        make_account: AccountFactory, anon: Api, pool: asyncpg.Pool, redis: Redis) -> None:
    """`POST /v1/events` and its preflight are answered by the server-level fast path
    (test_fastpath.py tests which requests it takes); a path written otherwise reaches the route,
    which answers the same."""
    shop = await make_shop(await make_account("seller"))
    _, code, _ = await video_anchor(pool, shop)
    body = orjson.dumps({"pv": page_view(), "events": [{"type": "impression", "code": code, "t": 1}]})
    plain = await anon.request("POST", "/v1/events?from=player", data=body)
    encoded = await anon.request("POST", URL(f"{anon.base_url}/v1/%65vents", encoded=True),
                                 data=orjson.dumps({"pv": page_view(), "events": [{"type": "impression",
                                                                                   "code": code, "t": 1}]}))
    for reply in (plain, encoded):
        assert reply.status == 204 and reply.headers["Access-Control-Allow-Origin"] == "*"
        assert reply.headers["Cache-Control"] == "no-store"
        assert "X-Request-Id" not in reply.headers
    assert [e["code"] for e in await wait_for_player_events(redis, 2)] == [code, code]
    bad = await anon.request("POST", "/v1/events", data=b"[]")
    assert bad.status == 422 and bad.error_code == "invalid_events" and "X-Request-Id" not in bad.headers
    assert bad.headers["Access-Control-Allow-Origin"] == "*"
    preflight = await anon.request("OPTIONS", "/v1/events", headers={
        "Origin": "https://shop.example", "Access-Control-Request-Method": "POST"})
    assert preflight.status == 204 and "X-Request-Id" not in preflight.headers
    assert preflight.headers["Access-Control-Allow-Methods"] == "POST"
    other = await anon.get("/v1/events")  # other methods: the app's 405, as before
    assert other.status == 405 and other.headers["Allow"] == "POST"


async def test_a_beacon_body_arriving_in_pieces_is_read_whole(start_server: ServerFactory,
                                                            make_account: AccountFactory, pool: asyncpg.Pool,
                                                            redis: Redis) -> None:
    server = await start_server()
    shop = await make_shop(Api.of(await make_account("seller"), str(server.make_url("/"))))
    _, code, _ = await video_anchor(pool, shop)
    body = orjson.dumps({"pv": page_view(), "events": [{"type": "impression", "code": code, "t": 1}]})
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body[:10]))
        await writer.drain()
        await asyncio.sleep(0.2)  # the server has read the first piece
        writer.write(body[10:])
        status = await reader.readline()
    finally:
        writer.close()
    assert status.startswith(b"HTTP/1.1 204"), status
    assert [e["code"] for e in await wait_for_player_events(redis, 1)] == [code]


async def test_bots_and_link_previews_are_classified(make_account: AccountFactory, anon: Api,
                                                     pool: asyncpg.Pool, redis: Redis) -> None:
    shop = await make_shop(await make_account("seller"))
    _, code, _ = await video_anchor(pool, shop)
    await beacon(anon, [{"type": "impression", "code": code}], headers={"User-Agent": "Googlebot/2.1"})
    await beacon(anon, [{"type": "impression", "code": code}],
                 headers={"User-Agent": "facebookexternalhit/1.1"})
    events = await wait_for_player_events(redis, 2)
    assert sorted(e["_batch"]["ua_class"] for e in events) == ["bot", "link_preview"]


async def test_the_fast_and_the_one_by_one_paths_stream_the_same_events(
        make_account: AccountFactory, server: TestServer, anon: Api, pool: asyncpg.Pool, redis: Redis) -> None:
    """A beacon whose cards are all cached, new to the page view and within their video takes
    the column-wise path (FunnelService._fast_impressions); any other goes event by event. Both
    must write the same events."""
    shop = await make_shop(await make_account("seller"))
    assert shop.seller.account_id is not None
    _, first, video_id = await video_anchor(pool, shop, duration_s=40)
    codes = [first] + [(await insert_anchor(pool, product_id=shop.product_ids[0], video_id=video_id,
                                            publisher_id=shop.seller.account_id))[1] for _ in range(2)]
    events = [{"type": "impression", "code": c, "t": t} for c, t in zip(codes, (1.5, 2, 40.9), strict=True)]
    events.append({"type": "view", "video": video_id, "t": 0})
    cold, warm = page_view(), page_view()
    assert (await beacon(anon, events, pv=cold)).status == 204  # cold cache: one by one
    funnel = server.app[FUNNEL]
    checked = [e for e in events_of(orjson.dumps({"pv": page_view(), "events": events[:3]})).events
               if isinstance(e, Impression)]
    assert funnel._fast_impressions(checked, set()) is not None  # now cached: the fast path
    assert (await beacon(anon, events, pv=warm)).status == 204
    streamed = await wait_for_player_events(redis, 8)

    def of(pv: str) -> list[dict[str, Any]]:
        return sorted(({k: v for k, v in e.items() if k != "_batch"} for e in streamed
                       if e["_batch"]["page_view"] == pv), key=lambda e: (e["type"], e["code"] or ""))

    assert of(cold) == of(warm)
    assert sorted(e["playback_s"] for e in of(warm)) == [0, 1.5, 2, 40.9]
    # a second beyond the video's end (and a second of slack), a repeat, a live card: one by one
    late = page_view()
    assert (await beacon(anon, [{"type": "impression", "code": first, "t": 41.5},
                                {"type": "impression", "code": codes[1], "t": 3}], pv=late)).status == 204
    assert (await beacon(anon, [{"type": "impression", "code": first, "t": 5},
                                {"type": "impression", "code": codes[2], "t": 6}], pv=late)).status == 204
    streamed = await wait_for_player_events(redis, 11)
    assert [(e["code"], e["playback_s"]) for e in of(late)] == sorted(
        [(first, None), (codes[1], 3), (codes[2], 6)], key=lambda p: p[0])


async def test_the_204_is_one_complete_message_per_beacon_on_a_kept_alive_connection(
        server: TestServer) -> None:
    """The 204 of a beacon on a kept-alive HTTP/1.1 connection is preformatted
    (funnel/views.py): its headers must be aiohttp's own (as an HTTP/1.0 request gets them),
    each once, and the next request on the connection answered after it."""
    body = orjson.dumps({"pv": page_view(), "events": [{"type": "impression", "code": "Zzunknown1"}]})

    def request(version: str) -> bytes:
        return (f"POST /v1/events HTTP/{version}\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(request("1.1") + request("1.1"))
        heads = [await read_head(reader), await read_head(reader)]
    finally:
        writer.close()
    reader, writer = await asyncio.open_connection(server.host, server.port)
    try:
        writer.write(request("1.0"))
        plain = await read_head(reader)  # aiohttp's own response path
    finally:
        writer.close()
    for status, headers in heads:
        assert status == "HTTP/1.1 204 No Content"
        names = [name for name, _ in headers]
        assert len(names) == len(set(names)), headers
        assert {(n, v) for n, v in headers if n != "date"} == {
            (n, v) for n, v in plain[1] if n not in ("date", "connection")}
    assert plain[0] == "HTTP/1.0 204 No Content"
    assert one(plain[1], "access-control-allow-origin") == "*"
