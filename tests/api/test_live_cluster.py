"""Several app instances sharing PostgreSQL and Redis: fan-out, Redis outages, viewer counts."""

from __future__ import annotations

import asyncio
import secrets
from contextlib import AsyncExitStack

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from shoplink.keys import LIVE

from support.api import AccountFactory, Api, ServerFactory
from support.live_data import (
    SseStream,
    live_with_products,
    open_stream,
    seller_with_products,
)
from support.services import RedisProcess
from support.wait import until


def _url(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


def _as(api: Api, server: TestServer) -> Api:
    return Api(api.session, _url(server), api.token, api.account_id)


async def _first_state(stream: SseStream) -> int:
    state = await stream.next()
    assert state is not None and state.event == "state"
    assert state.id is not None
    return state.id


async def test_viewers_on_two_instances_get_every_change(start_server: ServerFactory, make_account: AccountFactory,
                                                         http: ClientSession) -> None:
    a, b = await start_server(), await start_server()
    seller, ids = await seller_with_products(make_account, 3)
    host_a, host_b = _as(seller, a), _as(seller, b)
    live_id = await live_with_products(host_a, ids, start=True)
    async with AsyncExitStack() as stack:
        streams = [await stack.enter_async_context(open_stream(http, _url(server), live_id))
                   for server in (a, a, b, b)]
        for stream in streams:
            assert await _first_state(stream) == 1
        await until(lambda: _connected(a, b))
        await host_a.post(f"/api/v1/live/{live_id}/pins", {"product_id": ids[0]})
        await host_b.post(f"/api/v1/live/{live_id}/pins", {"product_id": ids[1]})
        await host_a.delete(f"/api/v1/live/{live_id}/pins/{ids[0]}")
        await host_b.patch(f"/api/v1/live/{live_id}/pins/{ids[1]}", {"sold_out": True})
        await host_a.post(f"/api/v1/live/{live_id}/end")
        for stream in streams:
            events = await stream.events(5)
            assert [(e.id, e.event) for e in events] == [
                (2, "pin"), (3, "pin"), (4, "unpin"), (5, "sold_out"), (6, "end")]
            assert events[1].data["pin"]["product_id"] == ids[1]
            assert await stream.next() is None


async def _connected(*servers: TestServer) -> bool:
    return all(server.app[LIVE].hub.connected.is_set() for server in servers)


async def test_redis_restart_while_viewers_are_connected(start_server: ServerFactory, make_account: AccountFactory,
                                                         http: ClientSession) -> None:
    proc = RedisProcess()
    proc.start()
    try:
        a = await start_server(redis_url=proc.url)
        b = await start_server(redis_url=proc.url)
        seller, ids = await seller_with_products(make_account, 3)
        host_a, host_b = _as(seller, a), _as(seller, b)
        live_id = await live_with_products(host_a, ids, start=True)
        await host_a.post(f"/api/v1/live/{live_id}/pins", {"product_id": ids[0]})
        async with AsyncExitStack() as stack:
            on_a = await stack.enter_async_context(open_stream(http, _url(a), live_id))
            on_b = await stack.enter_async_context(open_stream(http, _url(b), live_id))
            assert await _first_state(on_a) == 2 and await _first_state(on_b) == 2
            await until(lambda: _connected(a, b))

            proc.stop()
            await until(lambda: _disconnected(a, b))
            # Changes while Redis is down: stored in PostgreSQL, not broadcast.
            assert (await host_a.post(f"/api/v1/live/{live_id}/pins",
                                      {"product_id": ids[1]})).status == 201
            assert (await host_a.delete(f"/api/v1/live/{live_id}/pins/{ids[0]}")).status == 200
            proc.start()
            await until(lambda: _connected(a, b), timeout=20)

            for stream in (on_a, on_b):
                events = await stream.events(2, timeout=20)
                assert [(e.id, e.event) for e in events] == [(3, "pin"), (4, "unpin")]
            # And the pub/sub path works again after the restart.
            await host_b.post(f"/api/v1/live/{live_id}/pins", {"product_id": ids[2]})
            for stream in (on_a, on_b):
                event = await stream.next()
                assert event is not None and (event.id, event.event) == (5, "pin")
            # A new viewer on either instance sees the right state.
            for server in (a, b):
                async with open_stream(http, _url(server), live_id) as late:
                    state = await late.next()
                    assert state is not None and state.id == 5
                    assert [p["product_id"] for p in state.data["pins"]] == [ids[1], ids[2]]
    finally:
        proc.cleanup()


async def _disconnected(*servers: TestServer) -> bool:
    return not any(server.app[LIVE].hub.connected.is_set() for server in servers)


async def test_viewer_count_across_two_instances(start_server: ServerFactory, make_account: AccountFactory,
                                                 http: ClientSession) -> None:
    a = await start_server(live_heartbeat_s=0.2)
    b = await start_server(live_heartbeat_s=0.2)
    seller, ids = await seller_with_products(make_account, 1)
    host_a, host_b = _as(seller, a), _as(seller, b)
    live_id = await live_with_products(host_a, ids, start=True)

    async def viewers_are(api: Api, n: int) -> bool:
        reply = await api.get(f"/api/v1/live/{live_id}")
        return bool(reply.body["viewers"] == n)

    assert await viewers_are(host_a, 0)
    cookies = [secrets.token_hex(16) for _ in range(4)]  # four viewers (all from one address)
    async with AsyncExitStack() as stack:
        for server, cookie in ((a, cookies[0]), (a, cookies[1]), (b, cookies[2])):
            stream = await stack.enter_async_context(open_stream(http, _url(server), live_id, viewer=cookie))
            await _first_state(stream)
        await until(lambda: viewers_are(host_a, 3))
        await until(lambda: viewers_are(host_b, 3))
        async with open_stream(http, _url(b), live_id, viewer=cookies[3]) as extra:
            await _first_state(extra)
            await until(lambda: viewers_are(host_a, 4))
            # The same viewer on the other instance too (a second tab): still four viewers.
            async with open_stream(http, _url(a), live_id, viewer=cookies[3]) as again:
                await _first_state(again)
                await asyncio.sleep(0.6)  # a clock: three heartbeats, each a count report
                assert await viewers_are(host_a, 4) and await viewers_are(host_b, 4)
        await until(lambda: viewers_are(host_a, 3))  # the closed viewer stops counting
    await until(lambda: viewers_are(host_a, 0))
    await asyncio.sleep(0)


async def test_concurrent_changes_on_two_instances_arrive_in_sequence(
        start_server: ServerFactory, make_account: AccountFactory, http: ClientSession) -> None:
    a, b = await start_server(), await start_server()
    seller, ids = await seller_with_products(make_account, 3)
    live_id = await live_with_products(_as(seller, a), ids, start=True)
    async with AsyncExitStack() as stack:
        streams = [await stack.enter_async_context(open_stream(http, _url(server), live_id))
                   for server in (a, b)]
        for stream in streams:
            await _first_state(stream)
        await until(lambda: _connected(a, b))
        for round_ in range(3):
            hosts = [_as(seller, a if i % 2 else b) for i in range(3)]
            replies = await asyncio.gather(*(
                h.post(f"/api/v1/live/{live_id}/pins", {"product_id": pid})
                for h, pid in zip(hosts, ids, strict=True)))
            assert all(r.status == 201 for r in replies), [r.body for r in replies]
            replies = await asyncio.gather(*(
                h.delete(f"/api/v1/live/{live_id}/pins/{pid}") for h, pid in zip(hosts, ids, strict=True)))
            assert all(r.status == 200 for r in replies)
            for stream in streams:
                events = await stream.events(6)
                first = 2 + 6 * round_
                assert [e.id for e in events] == list(range(first, first + 6))


async def test_server_shutdown_ends_streams(
        start_server: ServerFactory, make_account: AccountFactory, http: ClientSession) -> None:
    server = await start_server()
    seller, ids = await seller_with_products(make_account, 1)
    live_id = await live_with_products(_as(seller, server), ids, start=True)
    async with open_stream(http, _url(server), live_id) as stream:
        await _first_state(stream)
        await server.close()
        assert await stream.next() is None
