"""The viewers' Server-Sent Events stream on one instance."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack

from aiohttp import ClientSession, TCPConnector

from shoplink.live.hub import MAX_COOKIES_PER_ADDRESS

from support.api import AccountFactory, Api, ServerFactory
from support.live_data import live_with_products, open_stream, seller_with_products
from support.wait import until


async def test_initial_state_then_changes_in_order_then_end(make_account: AccountFactory, http: ClientSession,
                                                            base_url: str) -> None:
    host, ids = await seller_with_products(make_account, 3)
    live_id = await live_with_products(host, ids)
    base = f"/api/v1/live/{live_id}"
    async with open_stream(http, base_url, live_id) as stream:
        state = await stream.next()
        assert state is not None and state.event == "state" and state.id == 0
        assert state.data["status"] == "scheduled" and state.data["pins"] == []
        assert stream.retry == 2000

        await host.post(f"{base}/start")
        await host.post(f"{base}/pins", {"product_id": ids[0]})
        await host.post(f"{base}/pins", {"product_id": ids[1]})
        await host.patch(f"{base}/pins/{ids[0]}", {"sold_out": True})
        await host.delete(f"{base}/pins/{ids[1]}")
        await host.patch(f"{base}/pins/{ids[0]}", {"sold_out": False})
        events = await stream.events(6)
        assert [(e.id, e.event) for e in events] == [
            (1, "start"), (2, "pin"), (3, "pin"), (4, "sold_out"), (5, "unpin"), (6, "sold_out")]
        assert events[0].data["status"] == "live" and events[0].data["started_at"]
        pin = events[1].data["pin"]
        assert pin["product_id"] == ids[0] and pin["title"] == "Product 0" and pin["price"] == "10.50"
        assert pin["link"].startswith("http://127.0.0.1:8080/r/") and pin["sold_out"] is False
        assert events[3].data == {**events[3].data, "product_id": ids[0], "sold_out": True}
        assert events[4].data["product_id"] == ids[1]
        assert [e.data["seq"] for e in events] == [1, 2, 3, 4, 5, 6]

        await host.post(f"{base}/end")
        end = await stream.next()
        assert end is not None and end.event == "end" and end.id == 7
        assert end.data["status"] == "ended" and end.data["ended_at"]
        assert await stream.next() is None  # the server closed the stream


async def test_state_matches_public_read(make_account: AccountFactory, http: ClientSession, base_url: str,
                                         anon: Api) -> None:
    host, ids = await seller_with_products(make_account, 2)
    live_id = await live_with_products(host, ids, start=True)
    await host.post(f"/api/v1/live/{live_id}/pins", {"product_id": ids[1]})
    await host.patch(f"/api/v1/live/{live_id}/pins/{ids[1]}", {"sold_out": True})
    async with open_stream(http, base_url, live_id) as stream:
        state = await stream.next()
    public = await anon.get(f"/v1/live/{live_id}")
    assert state is not None and state.data == public.body and state.id == public.body["seq"] == 3


async def test_resume_with_last_event_id(make_account: AccountFactory, http: ClientSession, base_url: str) -> None:
    host, ids = await seller_with_products(make_account, 3)
    live_id = await live_with_products(host, ids, start=True)
    base = f"/api/v1/live/{live_id}"
    async with open_stream(http, base_url, live_id) as stream:
        assert (await stream.next()).id == 1  # type: ignore[union-attr]
        await host.post(f"{base}/pins", {"product_id": ids[0]})
        seen = await stream.next()
        assert seen is not None and seen.id == 2
    # Disconnected: these happen while the viewer is away.
    await host.post(f"{base}/pins", {"product_id": ids[1]})
    await host.delete(f"{base}/pins/{ids[0]}")
    async with open_stream(http, base_url, live_id, last_event_id=2) as stream:
        missed = await stream.events(2)
        assert [(e.id, e.event) for e in missed] == [(3, "pin"), (4, "unpin")]
        assert missed[0].data["pin"]["product_id"] == ids[1]
        await host.post(f"{base}/pins", {"product_id": ids[2]})
        live = await stream.next()
        assert live is not None and (live.id, live.event) == (5, "pin")
    async with open_stream(http, base_url, live_id, last_event_id=5) as stream:
        await host.post(f"{base}/end")
        end = await stream.next()  # nothing missed: straight to the next change
        assert end is not None and (end.id, end.event) == (6, "end")
        assert await stream.next() is None
    # A resume after the end replays up to the end event and closes.
    async with open_stream(http, base_url, live_id, last_event_id=4) as stream:
        rest = [await stream.next(), await stream.next()]
        assert [(e.id, e.event) for e in rest if e] == [(5, "pin"), (6, "end")]
        assert await stream.next() is None
    # An id from the future (another session, a reset) gets the full state instead.
    async with open_stream(http, base_url, live_id, last_event_id=99) as stream:
        state = await stream.next()
        assert state is not None and state.event == "state" and state.data["status"] == "ended"
        assert (await stream.next()).event == "end"  # type: ignore[union-attr]
    bad = await http.get(f"{base_url}/v1/live/{live_id}/events", headers={"Last-Event-ID": "x"})
    assert bad.status == 400
    bad.release()


async def test_heartbeat_comments(
        start_server: ServerFactory, make_account: AccountFactory, http: ClientSession) -> None:
    server = await start_server(live_heartbeat_s=0.1)
    url = str(server.make_url("")).rstrip("/")
    host, ids = await seller_with_products(make_account, 1)
    live_id = await live_with_products(host, ids, start=True)
    async with open_stream(http, url, live_id) as stream:
        assert (await stream.next()).event == "state"  # type: ignore[union-attr]
        await stream.wait_comment()
        await stream.wait_comment()
        assert stream.comments[-1] == ": hb"
        await host.post(f"/api/v1/live/{live_id}/pins", {"product_id": ids[0]})
        event = await stream.until(lambda e: e.event == "pin")  # delivered to this instance too
        assert event.id == 2


async def test_connecting_to_an_ended_live(make_account: AccountFactory, http: ClientSession, base_url: str) -> None:
    host, ids = await seller_with_products(make_account, 1)
    live_id = await live_with_products(host, ids, start=True)
    await host.post(f"/api/v1/live/{live_id}/pins", {"product_id": ids[0]})
    await host.post(f"/api/v1/live/{live_id}/end")
    async with open_stream(http, base_url, live_id) as stream:
        state = await stream.next()
        assert state is not None and state.data["status"] == "ended" and state.data["pins"] == []
        end = await stream.next()
        assert end is not None and end.event == "end" and end.id == 3
        assert await stream.next() is None
    # A standard EventSource reconnects with the last id it saw: 204 tells it to stop for good.
    for headers, query in (({"Last-Event-ID": "3"}, ""), ({}, "?last_event_id=3")):
        async with http.get(f"{base_url}/v1/live/{live_id}/events{query}", headers=headers) as resp:
            assert resp.status == 204 and await resp.read() == b""
            assert resp.headers["Access-Control-Allow-Origin"] == "*"


async def test_title_change_reaches_new_viewers(make_account: AccountFactory, http: ClientSession,
                                                base_url: str) -> None:
    host, ids = await seller_with_products(make_account, 1)
    live_id = await live_with_products(host, ids, start=True)
    async with open_stream(http, base_url, live_id) as watcher:
        assert (await watcher.next()).data["title"] == "Friday live"  # type: ignore[union-attr]
        await host.patch(f"/api/v1/live/{live_id}", {"title": "Renamed live"})
        await host.post(f"/api/v1/live/{live_id}/pins", {"product_id": ids[0]})
        await watcher.until(lambda e: e.event == "pin")
        async with open_stream(http, base_url, live_id) as late:
            state = await late.next()
            assert state is not None and state.data["title"] == "Renamed live"
            assert [p["product_id"] for p in state.data["pins"]] == ids


async def test_viewer_count_counts_viewers_not_connections(make_account: AccountFactory, base_url: str) -> None:
    """100 anonymous event streams from one client are one viewer; viewer cookies tell viewers on
    one address apart, up to MAX_COOKIES_PER_ADDRESS (made-up cookies cost nothing)."""
    host, ids = await seller_with_products(make_account, 1)
    live_id = await live_with_products(host, ids, start=True)

    async def viewers() -> int:
        count: int = (await host.get(f"/api/v1/live/{live_id}")).body["viewers"]
        return count

    async with AsyncExitStack() as stack:
        here = await stack.enter_async_context(ClientSession(connector=TCPConnector(limit=0)))
        for _ in range(100):
            stream = await stack.enter_async_context(open_stream(here, base_url, live_id))
            assert (await stream.next()) is not None
        await until(lambda: _is(viewers, 1))
        elsewhere = await stack.enter_async_context(
            ClientSession(connector=TCPConnector(limit=0, local_addr=("127.0.0.2", 0))))
        for _ in range(3):
            stream = await stack.enter_async_context(open_stream(elsewhere, base_url, live_id))
            assert (await stream.next()) is not None
        await until(lambda: _is(viewers, 2))  # another address: another viewer
        for _ in range(2):
            for n in range(MAX_COOKIES_PER_ADDRESS + 4):
                stream = await stack.enter_async_context(
                    open_stream(here, base_url, live_id, viewer=f"{n:032x}"))
                assert (await stream.next()) is not None
        await until(lambda: _is(viewers, 2 + MAX_COOKIES_PER_ADDRESS))
        await asyncio.sleep(0.3)  # a clock: the count is reported within 0.5 s; it stays
        assert await viewers() == 2 + MAX_COOKIES_PER_ADDRESS
    await until(lambda: _is(viewers, 0))


async def _is(read: Callable[[], Awaitable[int]], want: int) -> bool:
    return await read() == want
