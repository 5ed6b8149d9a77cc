"""The resolver cache: two instances stay correct through the change bus, misses are coalesced,
unknown codes are remembered, and a TTL bounds a lost invalidation."""

from __future__ import annotations

import asyncio
import time

import asyncpg
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from shoplink.changes import Change
from shoplink.clicks.resolver import Resolver, Target
from shoplink.keys import CHANGES, CLICK_RESOLVER

from support.api import AccountFactory, Api, ServerFactory
from support.click_data import insert_anchor, make_shop, random_code, video_anchor
from support.wait import until


def viewer(http: ClientSession, server: TestServer) -> Api:
    return Api(http, str(server.make_url("")), None)


async def test_product_change_on_one_instance_reaches_the_other_within_a_second(
        make_account: AccountFactory, start_server: ServerFactory, http: ClientSession, pool: asyncpg.Pool) -> None:
    a, b = await start_server(), await start_server()
    await asyncio.wait_for(asyncio.gather(a.app[CHANGES].connected.wait(),
                                          b.app[CHANGES].connected.wait()), 5)
    shop = await make_shop(await make_account("seller"))
    seller = Api(http, str(a.make_url("")), shop.seller.token)  # the change goes through a
    _, code, _ = await video_anchor(pool, shop)
    on_a, on_b = viewer(http, a), viewer(http, b)
    for api in (on_a, on_b):  # both instances have the anchor cached
        assert (await api.get(f"/r/{code}")).headers["Location"].startswith("https://acme.example/p/shoe?")
    reply = await seller.patch(f"/api/v1/products/{shop.product_ids[0]}",
                               {"url": "https://acme.example/p/boot?size=42"})
    assert reply.status == 200, reply.body

    async def b_follows() -> bool:
        location: str = (await on_b.get(f"/r/{code}")).headers["Location"]
        return location.startswith("https://acme.example/p/boot?size=42&utm_source=shoplink&")

    await until(b_follows, timeout=1.0, what="instance b redirects to the new URL")
    assert (await on_a.get(f"/r/{code}")).headers["Location"].startswith("https://acme.example/p/boot?")


async def test_concurrent_misses_for_one_code_make_one_query(make_account: AccountFactory, server: TestServer,
                                                             anon: Api, pool: asyncpg.Pool) -> None:
    shop = await make_shop(await make_account("seller"))
    _, code, _ = await video_anchor(pool, shop)
    resolver = server.app[CLICK_RESOLVER]
    before = resolver.loads
    replies = await asyncio.gather(*(anon.get(f"/r/{code}") for _ in range(40)))
    assert {r.status for r in replies} == {302}
    assert resolver.loads - before == 1
    assert resolver.hits + resolver.misses >= 40


async def test_unknown_codes_are_remembered_and_bogus_ones_never_queried(
        server: TestServer, anon: Api) -> None:
    resolver = server.app[CLICK_RESOLVER]
    before = resolver.loads
    code = random_code()
    for _ in range(20):
        assert (await anon.get(f"/r/{code}")).status == 404
    assert resolver.loads - before == 1 and resolver.negative_hits >= 19
    for n in range(20):  # cannot be a code (alphabet, length): no query at all
        assert (await anon.get(f"/r/bad.code~{n}")).status == 404
    assert resolver.loads - before == 1


async def test_new_anchor_with_a_remembered_unknown_code_resolves_after_its_change(
        make_account: AccountFactory, server: TestServer, anon: Api, pool: asyncpg.Pool) -> None:
    shop = await make_shop(await make_account("seller"))
    code = random_code()
    assert (await anon.get(f"/r/{code}")).status == 404
    video_id = (await video_anchor(pool, shop))[2]
    assert shop.seller.account_id is not None
    anchor_id, _ = await insert_anchor(pool, product_id=shop.product_ids[0],
                                       publisher_id=shop.seller.account_id, video_id=video_id, code=code)
    await server.app[CHANGES].publish(Change("anchor", anchor_id))
    assert (await anon.get(f"/r/{code}")).status == 302


async def test_ttl_bounds_a_missed_invalidation(
        make_account: AccountFactory, start_server: ServerFactory, http: ClientSession,
        pool: asyncpg.Pool) -> None:
    server = await start_server(click_cache_ttl_s=0.2)
    api = viewer(http, server)
    shop = await make_shop(await make_account("seller"))
    _, code, _ = await video_anchor(pool, shop)
    assert "/p/shoe" in (await api.get(f"/r/{code}")).headers["Location"]
    # Changed behind the app's back: no change message at all.
    await pool.execute("UPDATE products SET url = 'https://acme.example/p/sandal' WHERE id = $1",
                       shop.product_ids[0])
    await asyncio.sleep(0.3)  # past the TTL (0.2 s)
    assert "/p/sandal?" in (await api.get(f"/r/{code}")).headers["Location"]


async def test_everything_change_forgets_the_cache(make_account: AccountFactory, server: TestServer, anon: Api,
                                                   pool: asyncpg.Pool) -> None:
    shop = await make_shop(await make_account("seller"))
    _, code, _ = await video_anchor(pool, shop)
    await anon.get(f"/r/{code}")
    resolver = server.app[CLICK_RESOLVER]
    assert resolver.size == 1
    await server.app[CHANGES].publish(Change("*", 0))
    assert resolver.size == 0


async def _replaced(resolver: Resolver, code: str, entry: Target) -> Target:
    def re_read() -> Target | None:
        current = resolver.get(code)
        return current if current is not None and current is not entry else None

    return await until(re_read, what="the entry was re-read")


async def test_due_entries_are_re_read_in_the_background_while_clicks_use_them(
        make_account: AccountFactory, server: TestServer, anon: Api, pool: asyncpg.Pool) -> None:
    shop = await make_shop(await make_account("seller"))
    _, code, _ = await video_anchor(pool, shop)
    resolver = server.app[CLICK_RESOLVER]
    assert "/p/shoe?" in (await anon.get(f"/r/{code}")).headers["Location"]
    misses, loads = resolver.misses, resolver.loads
    await pool.execute("UPDATE products SET url = 'https://acme.example/p/sandal' WHERE id = $1",
                       shop.product_ids[0])  # behind the app's back: only a re-read finds it
    entry = resolver.get(code)
    assert entry is not None and entry.refresh_at < entry.expires
    entry.refresh_at = 0.0  # due now (normally at 80 % of its time to live)
    assert "/p/shoe?" in (await anon.get(f"/r/{code}")).headers["Location"]  # served, not waited for
    fresh = await _replaced(resolver, code, entry)
    assert "/p/sandal?" in (await anon.get(f"/r/{code}")).headers["Location"]
    assert resolver.misses == misses and resolver.loads == loads + 1 and resolver.refreshes >= 1
    # Nothing changed this time: the same entry lives on (prepared Location and event prefix kept).
    fresh.refresh_at = 0.0
    await anon.get(f"/r/{code}")
    await until(lambda: fresh.refresh_at > time.monotonic() + 5)  # renewed (re-read retry would be 1 s)
    assert resolver.get(code) is fresh and fresh.refresh_at > time.monotonic() + 5
    assert fresh.expires > fresh.refresh_at and resolver.misses == misses


async def test_a_click_that_needs_a_delayed_re_read_starts_it_at_once(
        make_account: AccountFactory, server: TestServer, anon: Api, pool: asyncpg.Pool) -> None:
    shop = await make_shop(await make_account("seller"))
    anchor_id, code, _ = await video_anchor(pool, shop)
    resolver = server.app[CLICK_RESOLVER]
    await anon.get(f"/r/{code}")
    entry = resolver.get(code)
    assert entry is not None
    entry.refresh_at = 0.0
    assert resolver.get(code) is entry  # due: a re-read is queued, to start with others later
    assert code in resolver._refresh_queue
    await pool.execute("UPDATE products SET url = 'https://acme.example/p/sandal' WHERE id = $1",
                       shop.product_ids[0])
    resolver.on_change(Change("anchor", anchor_id))  # dropped: the next click has to wait for it
    assert resolver.get(code) is None
    waiting = asyncio.ensure_future(resolver.resolve(code))
    await asyncio.sleep(0)  # resolve() has joined the queued re-read...
    assert code not in resolver._refresh_queue and resolver._refresh_timer is None  # ...and started it
    target = await waiting
    assert target.head is not None and "/p/sandal?" in target.head
