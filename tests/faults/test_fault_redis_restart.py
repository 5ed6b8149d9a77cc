"""Redis restarted under a running app: the first requests that touch Redis afterwards succeed.

The app's Redis client keeps a pool of connections; a restart closes them all on the server side,
and the first command on each pooled connection then fails (`Connection closed by server`). Found
by bench/soak.py: the stats API answered 500, later 503, once per server process after a Redis
restart, and a change made then was not broadcast to the other instances. The client retries a
command on a fresh connection when its connection failed; a real outage still answers 503."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator

import asyncpg
import orjson
import pytest
from aiohttp import ClientSession
from redis.asyncio import Redis
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError

from shoplink.changes import CHANNEL
from shoplink.redis import RedisTopology
from shoplink.streams import stream_key

from support.api import AccountFactory, Api, ServerFactory
from support.click_data import make_shop, video_anchor
from support.cluster import RedisCluster3
from support.services import RedisProcess

pytestmark = pytest.mark.slow


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    proc = RedisProcess(persistent=True)
    proc.start()
    yield proc
    proc.cleanup()


async def next_change(client: Redis, action: Callable[[], Awaitable[None]]) -> dict[str, object]:
    """Subscribe to the change channel, run `action`, and return the first change broadcast."""
    pubsub = client.pubsub()
    await pubsub.subscribe(CHANNEL)
    try:
        await action()
        async with asyncio.timeout(10):
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None:
                    change: dict[str, object] = orjson.loads(message["data"])
                    return change
    finally:
        await pubsub.aclose()  # type: ignore[no-untyped-call]


async def test_first_requests_after_a_redis_restart_succeed(
        make_account: AccountFactory, start_server: ServerFactory, http: ClientSession, pool: asyncpg.Pool,
        own_redis: RedisProcess) -> None:
    seller = await make_account("seller")
    shop = await make_shop(seller)
    anchor_id, _, _ = await video_anchor(pool, shop)
    analyst = await make_account("analyst")
    server = await start_server(redis_url=own_redis.url)
    base = str(server.make_url(""))
    seller_api = Api(http, base, seller.token)
    analyst_api = Api(http, base, analyst.token)
    product = shop.product_ids[0]
    stats_path = f"/api/v1/stats/anchors/{anchor_id}"

    async def patch(title: str) -> None:
        reply = await seller_api.patch(f"/api/v1/products/{product}", {"title": title})
        assert reply.status == 200, reply.body

    # Warm up: the app's pool now holds connections to this Redis.
    assert (await analyst_api.get(stats_path)).status == 200
    client = Redis.from_url(own_redis.url)
    try:
        change = await next_change(client, lambda: patch("before"))
        assert change["k"] == "product" and change["i"] == product
    finally:
        await client.aclose()

    # Each restart leaves every pooled connection closed by the server. After the first one, a
    # management call whose change must still be broadcast (the app's background subscribers may
    # reach a stale connection first); after the second one, the first stats request, which
    # answered 503 (before: 500) without the retry.
    own_redis.terminate()
    own_redis.start()
    client = Redis.from_url(own_redis.url)
    try:
        change = await next_change(client, lambda: patch("after a restart"))
        assert change["k"] == "product" and change["i"] == product  # broadcast, not lost
    finally:
        await client.aclose()

    own_redis.terminate()
    own_redis.start()
    reply = await analyst_api.get(stats_path)
    assert reply.status == 200, (reply.status, reply.body)
    reply = await analyst_api.get(stats_path)
    assert reply.status == 200, (reply.status, reply.body)

    # A real outage still fails fast, with 503 and Retry-After.
    own_redis.stop()
    reply = await analyst_api.get(stats_path)
    assert reply.status == 503 and int(reply.headers["Retry-After"]) > 0, reply.body
    own_redis.start()
    assert (await analyst_api.get(stats_path)).status == 200


async def test_cluster_and_node_clients_reconnect_after_a_node_restart(redis_cluster: RedisCluster3) -> None:
    """The same on a Redis Cluster: the key-routed client and the node clients of the topology
    (the count worker's, the attribution consumer's) answer their first command after a node
    restarted; while it is down they fail (ConnectionError), they do not hang."""
    topology = RedisTopology(f"redis://{redis_cluster.nodes[0].address}/0", tuple(redis_cluster.seeds.split(",")))
    try:
        assert await topology.connect()
        shard = 0
        key = stream_key(shard)
        node_client = topology.for_shard(shard)
        await topology.client.xadd(key, {"e": b"1"})
        assert await node_client.xlen(key) == 1
        victim = redis_cluster.node_of_slot(key_slot(key.encode()))
        redis_cluster.restart(victim)  # no persistence: the stream is gone
        assert await node_client.xlen(key) == 0
        assert await topology.client.xlen(key) == 0
        await topology.ping()
        victim.stop()
        with pytest.raises(RedisConnectionError):
            await node_client.xlen(key)
        victim.start()
        redis_cluster.wait_ok()
        await topology.client.xadd(key, {"e": b"2"})
        assert await node_client.xlen(key) == 1
    finally:
        await topology.aclose()
