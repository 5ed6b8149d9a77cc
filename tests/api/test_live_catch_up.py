"""Missed live messages are read back from PostgreSQL by sequence number."""

from __future__ import annotations

import asyncpg
import orjson
from aiohttp import ClientSession
from redis.asyncio import Redis

from shoplink.live import repository as repo
from shoplink.live.hub import CHANNEL
from shoplink.live.models import LiveEvent, Pin

from support.api import AccountFactory, Api, ServerFactory
from support.live_data import live_with_products, open_stream, seller_with_products


async def _store_pin(pool: asyncpg.Pool, live_id: int, product_id: int) -> LiveEvent:
    """A pin committed to PostgreSQL by 'another instance' whose broadcast we control."""
    async with pool.acquire() as con, con.transaction():
        await repo.get_session(con, live_id, for_update=True)
        item = await repo.set_product(con, live_id, product_id)
        assert item is not None
        snapshot = Pin(product_id, item.code, item.title, item.price, None, item.currency,
                       item.image_url, 1.0).snapshot()
        event = await repo.insert_event(con, live_id, "pin", product_id, snapshot)
        await repo.insert_pin(con, live_id, item.anchor_id, event)
    return event


async def test_a_gap_is_filled_from_postgres(make_account: AccountFactory, pool: asyncpg.Pool, redis: Redis,
                                             http: ClientSession, base_url: str) -> None:
    host, ids = await seller_with_products(make_account, 2)
    live_id = await live_with_products(host, ids, start=True)
    async with open_stream(http, base_url, live_id) as stream:
        assert (await stream.next()).id == 1  # type: ignore[union-attr]
        await _store_pin(pool, live_id, ids[0])  # its message is lost
        second = await _store_pin(pool, live_id, ids[1])
        await redis.publish(CHANNEL, orjson.dumps({"o": "elsewhere", **second.to_wire()}))
        events = await stream.events(2)
        assert [(e.id, e.data["pin"]["product_id"]) for e in events] == [(2, ids[0]), (3, ids[1])]


async def test_a_message_lost_without_disconnect_arrives_by_resync(
        start_server: ServerFactory, make_account: AccountFactory, pool: asyncpg.Pool, http: ClientSession) -> None:
    server = await start_server(live_resync_s=0.2)
    url = str(server.make_url("")).rstrip("/")
    seller, ids = await seller_with_products(make_account, 1)
    host = Api(http, url, seller.token, seller.account_id)
    live_id = await live_with_products(host, ids, start=True)
    async with open_stream(http, url, live_id) as stream:
        assert (await stream.next()).id == 1  # type: ignore[union-attr]
        await _store_pin(pool, live_id, ids[0])  # never published at all
        event = await stream.next()
        assert event is not None and (event.id, event.event) == (2, "pin")
