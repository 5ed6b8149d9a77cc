"""shoplink on a real 3-node Redis Cluster (tests/support/cluster.py): clicks written to the
node of each shard and counted by `shoplink count`, cache invalidations and live pins between two
instances over sharded pub/sub, a node restart, and a MOVED reply after a slot changed owner."""

from __future__ import annotations

import asyncio
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis
from redis.crc import key_slot
from redis.exceptions import RedisError

from shoplink.analytics.consumer import CountWorker
from shoplink.auth.service import new_token
from shoplink.changes import CHANNEL as CHANGES_CHANNEL
from shoplink.changes import Change, ChangeBus
from shoplink.config import Settings
from shoplink.delivery.writer import ClickWriter
from shoplink.keys import CHANGES, LIVE, RATE_LIMITS, REDIS
from shoplink.live.hub import CHANNEL as LIVE_CHANNEL
from shoplink.redis import RedisTopology
from shoplink.security.ratelimit import target_key, token_key
from shoplink.streams import stream_key

from support.analytics_data import seed
from support.api import AccountFactory, Api, ServerFactory
from support.click_data import make_shop, video_anchor, xrange
from support.cluster import RedisCluster3, command
from support.count import run_count
from support.event_data import event, write_events
from support.live_data import live_with_products, open_stream, seller_with_products
from support.wait import until

SHARDS = 6
ROOT = Path(__file__).resolve().parents[2]


def _url(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


def _as(api: Api, server: TestServer) -> Api:
    return Api(api.session, _url(server), api.token, api.account_id)


def _node_port(cluster: RedisCluster3, key: str) -> int:
    return cluster.node_of_slot(key_slot(key.encode())).port


async def _on_node(port: int) -> Redis:
    return Redis(host="127.0.0.1", port=port)


async def _start(start_server: ServerFactory, cluster: RedisCluster3, **overrides: Any) -> TestServer:
    server: TestServer = await start_server(redis_cluster_nodes=tuple(cluster.seeds.split(",")),
                                            click_shards=SHARDS, **overrides)
    return server


async def test_clicks_land_on_each_shards_node_and_are_counted(
        redis_cluster: RedisCluster3, start_server: ServerFactory, make_account: AccountFactory, http: ClientSession,
        pool: asyncpg.Pool, settings: Settings) -> None:
    app = await _start(start_server, redis_cluster)
    topology = app.app[REDIS]
    assert topology.cluster
    ready = await Api(http, _url(app), None).get("/readyz")  # PINGs every primary
    assert ready.status == 200, ready.body
    # The shards' streams live on all three nodes, and the app routes each to its owner.
    owners = {n: _node_port(redis_cluster, stream_key(n)) for n in range(SHARDS)}
    assert len(set(owners.values())) == 3, owners
    for n, port in owners.items():
        assert topology.url_for_shard(n).endswith(f"127.0.0.1:{port}/0")

    seller, creator = await make_account("seller"), await make_account("creator")
    s = await seed(pool, seller.account_id, creator.account_id, products=SHARDS)
    anchors = {aid: f"vacode{i:03d}" for i, aid in enumerate(s.video_anchor_ids)}
    assert {aid % SHARDS for aid in anchors} == set(range(SHARDS))
    viewer = Api(http, _url(app), None)
    clicks = {aid: 2 + i for i, aid in enumerate(anchors)}
    for aid, code in anchors.items():
        for _ in range(clicks[aid]):
            reply = await viewer.get(f"/r/{code}")
            assert reply.status in (302, 410), reply.status  # 410: the seed has no shop domain; counted

    # Each shard's events are on the node that owns the shard's slot (read there directly).
    async def landed() -> bool:
        total = 0
        for n, port in owners.items():
            node = await _on_node(port)
            try:
                total += await node.xlen(stream_key(n))
            finally:
                await node.aclose()
        return total == sum(clicks.values())

    await until(landed)
    for n, port in owners.items():
        node = await _on_node(port)
        try:
            entries = await xrange(node, stream_key(n))
        finally:
            await node.aclose()
        assert len(entries) == sum(c for aid, c in clicks.items() if aid % SHARDS == n)
        assert all(orjson.loads(f[b"e"])["anchor_id"] % SHARDS == n for _, f in entries)

    cluster_env: dict[str, Any] = {"redis_cluster_nodes": redis_cluster.seeds, "click_shards": SHARDS}
    exit_code, out, err = await run_count(settings, "--exit-when-idle", **cluster_env)
    assert exit_code == 0, err

    # Its attribution consumer read every shard on its node too (group `attribution`).
    async def attribution_caught_up() -> bool:
        total = 0
        for n in range(SHARDS):
            groups = await topology.client.xinfo_groups(stream_key(n))
            group = next((g for g in groups if g["name"] == b"attribution"), None)
            if group is None or group["pending"] or group["lag"]:
                return False
            total += int(group["entries-read"] or 0)
        return total == sum(clicks.values())

    await until(attribution_caught_up)

    analyst = _as(await make_account("analyst"), app)
    since = int(time.time()) - 3000
    for aid in anchors:
        reply = await analyst.get(f"/api/v1/stats/anchors/{aid}?granularity=minute&from={since}")
        assert reply.status == 200, reply.body
        assert reply.body["totals"]["clicks"] == clicks[aid], aid
    reply = await analyst.get(f"/api/v1/stats/videos/{s.video_id}?granularity=minute&from={since}")
    assert reply.body["totals"]["clicks"] == sum(clicks.values())

    # The operational commands work on the cluster too.
    exit_code, out, err = await run_count(settings, "--status", "--interval", "0", **cluster_env)
    assert exit_code == 0, err
    status = orjson.loads(out)
    assert [sh["length"] for sh in status["shards"]] == [
        sum(c for aid, c in clicks.items() if aid % SHARDS == n) for n in range(SHARDS)]
    assert all(g["pending"] == 0 for sh in status["shards"] for g in sh["groups"])
    exit_code, out, err = await run_count(settings, "--rebuild", **cluster_env)
    assert exit_code == 0, out + err
    assert orjson.loads(out)["events"] == sum(clicks.values())
    exit_code, out, err = await run_count(settings, "--rollup", **cluster_env)
    assert exit_code == 0, err
    reply = await analyst.get(f"/api/v1/stats/videos/{s.video_id}?granularity=minute&from={since}")
    assert reply.body["totals"]["clicks"] == sum(clicks.values())  # now read from PostgreSQL


async def test_a_change_on_one_instance_reaches_the_other_over_sharded_pubsub(
        redis_cluster: RedisCluster3, start_server: ServerFactory, make_account: AccountFactory, http: ClientSession,
        pool: asyncpg.Pool) -> None:
    a, b = await _start(start_server, redis_cluster), await _start(start_server, redis_cluster)
    await asyncio.wait_for(asyncio.gather(a.app[CHANGES].connected.wait(),
                                          b.app[CHANGES].connected.wait()), 10)
    # Both subscriptions are SSUBSCRIBEs on the channel's node; nothing uses plain pub/sub.
    port = _node_port(redis_cluster, CHANGES_CHANNEL)
    node = await _on_node(port)
    try:
        sharded = await node.execute_command("PUBSUB", "SHARDNUMSUB", CHANGES_CHANNEL)  # type: ignore[no-untyped-call]
        assert sharded[1] == 2
        assert await node.pubsub_numsub(CHANGES_CHANNEL) == [(CHANGES_CHANNEL.encode(), 0)]
    finally:
        await node.aclose()

    shop = await make_shop(_as(await make_account("seller"), a))
    _, code, _ = await video_anchor(pool, shop)
    on_b = Api(http, _url(b), None)
    assert (await on_b.get(f"/r/{code}")).headers["Location"].startswith("https://acme.example/p/shoe?")
    reply = await shop.seller.patch(f"/api/v1/products/{shop.product_ids[0]}",
                                    {"url": "https://acme.example/p/boot?size=42"})
    assert reply.status == 200, reply.body

    async def b_follows() -> bool:
        location: str = (await on_b.get(f"/r/{code}")).headers["Location"]
        return location.startswith("https://acme.example/p/boot?size=42&")

    await until(b_follows, timeout=5)


async def test_a_live_pin_reaches_a_viewer_on_another_instance(
        redis_cluster: RedisCluster3, start_server: ServerFactory, make_account: AccountFactory,
        http: ClientSession) -> None:
    a, b = await _start(start_server, redis_cluster), await _start(start_server, redis_cluster)
    seller, ids = await seller_with_products(make_account, 2)
    host_a = _as(seller, a)
    live_id = await live_with_products(host_a, ids, start=True)
    async with AsyncExitStack() as stack:
        on_b = await stack.enter_async_context(open_stream(http, _url(b), live_id))
        state = await on_b.next()
        assert state is not None and state.event == "state"

        async def subscribed() -> bool:
            return all(s.app[LIVE].hub.connected.is_set() for s in (a, b))

        await until(subscribed)
        node = await _on_node(_node_port(redis_cluster, LIVE_CHANNEL))
        try:
            assert (await node.execute_command("PUBSUB", "SHARDNUMSUB", LIVE_CHANNEL))[1] == 2  # type: ignore[no-untyped-call]
        finally:
            await node.aclose()
        assert (await host_a.post(f"/api/v1/live/{live_id}/pins", {"product_id": ids[1]})).status == 201
        event = await on_b.next()
        assert event is not None and event.event == "pin"
        assert event.data["pin"]["product_id"] == ids[1]

        async def counted_on_a() -> bool:  # b's viewer count, written through the cluster client
            return bool((await host_a.get(f"/api/v1/live/{live_id}")).body["viewers"] == 1)

        await until(counted_on_a)


async def test_a_node_restart_loses_no_click_and_resubscribes(
        redis_cluster: RedisCluster3, tmp_path: Path) -> None:
    seeds = tuple(redis_cluster.seeds.split(","))
    topology = RedisTopology("redis://127.0.0.1:1/0", seeds)
    await topology.connect()
    writer = ClickWriter("redis://127.0.0.1:1/0", tmp_path / "spool", router=topology,
                         timeout_s=0.3, batch_size=10)
    received: list[Change] = []
    bus_a, bus_b = ChangeBus(topology), ChangeBus(topology)
    bus_b.subscribe(received.append)
    tasks = [asyncio.create_task(bus.run()) for bus in (bus_a, bus_b)]
    await writer.start()
    try:
        await asyncio.wait_for(bus_b.connected.wait(), 10)
        # Restart the node that holds the change channel and (at least) one shard.
        victim = redis_cluster.node_of_slot(key_slot(CHANGES_CHANNEL.encode()))
        shards_on_victim = [n for n in range(SHARDS)
                            if redis_cluster.node_of_slot(key_slot(stream_key(n).encode())) is victim]
        assert shards_on_victim
        victim.stop()
        for i in range(60):
            writer.record(i % SHARDS, orjson.dumps({"i": i}))
            await asyncio.sleep(0.01)  # pace the clicks over the outage
        await until(lambda: writer.spool_pending, timeout=10)
        victim.start()
        redis_cluster.wait_ok()
        for i in range(60, 90):
            writer.record(i % SHARDS, orjson.dumps({"i": i}))

        async def all_written() -> bool:
            seen = 0
            for n in range(SHARDS):
                seen += await topology.client.xlen(stream_key(n))
            return seen == 90 and not writer.spool_pending

        await until(all_written, timeout=20)
        got = []
        for n in range(SHARDS):
            got += [orjson.loads(f[b"e"])["i"] for _, f in await xrange(topology.client, stream_key(n))]
        got.sort()
        assert got == list(range(90))  # every event exactly once

        # The change subscription came back on the restarted node.
        async def delivered() -> bool:
            await bus_a.publish(Change("product", 7))
            await asyncio.sleep(0.05)
            return Change("product", 7) in received

        await until(delivered, timeout=20)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await writer.close()
        await topology.aclose()


async def test_a_moved_reply_makes_the_writer_follow_the_slot(
        redis_cluster: RedisCluster3, tmp_path: Path) -> None:
    """A shard's slot given to another node (an empty slot: no data migration): the writer's
    next XADD gets MOVED, the events are spooled, the slot map re-read and they are replayed
    on the new owner."""
    seeds = tuple(redis_cluster.seeds.split(","))
    topology = RedisTopology("redis://127.0.0.1:1/0", seeds)
    await topology.connect()
    writer = ClickWriter("redis://127.0.0.1:1/0", tmp_path / "spool", router=topology, batch_size=5)
    await writer.start()
    shard = 0
    slot = key_slot(stream_key(shard).encode())
    old = redis_cluster.node_of_slot(slot)
    new = next(n for n in redis_cluster.nodes if n is not old)
    try:
        writer.record(shard, b'{"i":0}')
        await until(lambda: _xlen_is(topology, shard, 1))
        await topology.client.delete(stream_key(shard))  # the slot must be empty to hand it over
        _give_slot(redis_cluster, slot, new)
        for i in range(1, 6):
            writer.record(shard, b'{"i":%d}' % i)
        await until(lambda: _xlen_on(new.port, shard, 5), timeout=15)
        assert writer.write_errors >= 1  # the MOVED replies
        assert topology.url_for_shard(shard).endswith(f":{new.port}/0")
    finally:
        await writer.close()
        await topology.aclose()
        command(new.port, "DEL", stream_key(shard))  # give the slot back for the other tests
        _give_slot(redis_cluster, slot, old)


def _node_id(port: int) -> str:
    return command(port, "CLUSTER", "MYID").decode().split("\r\n")[1]


def _give_slot(cluster: RedisCluster3, slot: int, to: Any) -> None:
    target = _node_id(to.port)
    for node in cluster.nodes:
        command(node.port, "CLUSTER", "SETSLOT", str(slot), "NODE", target)
    cluster.wait_ok()


async def _xlen_is(topology: RedisTopology, shard: int, n: int) -> bool:
    return bool(await topology.client.xlen(stream_key(shard)) == n)


async def _xlen_on(port: int, shard: int, n: int) -> bool:
    node = await _on_node(port)
    try:
        return bool(await node.xlen(stream_key(shard)) == n)
    finally:
        await node.aclose()


async def test_the_count_worker_goes_on_while_a_node_is_down_and_after_it_restarts(
        redis_cluster: RedisCluster3, make_account: AccountFactory, pool: asyncpg.Pool,
        settings: Settings) -> None:
    """The other nodes' shards are counted while one node is down; the node comes back empty (no
    persistence): the worker recreates its group there and counts what is written afterwards
    (what the node held before is lost, as on one Redis)."""
    seeds = tuple(redis_cluster.seeds.split(","))
    seller, creator = await make_account("seller"), await make_account("creator")
    s = await seed(pool, seller.account_id, creator.account_id, products=SHARDS)
    topology = RedisTopology(settings.redis_url, seeds)
    await topology.connect()
    worker = CountWorker(settings.replace(redis_cluster_nodes=seeds, click_shards=SHARDS,
                                          count_block_ms=100), topology, pool,
                         rollups=False, trims=False)
    task = asyncio.create_task(worker.run())
    now = int(time.time() * 1000)

    def docs(first: int, n: int) -> list[dict[str, Any]]:
        out = []
        for i in range(first, first + n):
            j = i % SHARDS
            out.append(event(ts_ms=now + i, anchor_id=s.video_anchor_ids[j], video_id=s.video_id,
                             product_id=s.product_ids[j], shop_id=s.shop_id, creator_id=s.creator_id,
                             viewer_id=i))
        return out

    try:
        await write_events(topology.client, docs(0, 60), shards=SHARDS)  # type: ignore[arg-type]
        await until(lambda: worker.stats.applied == 60)
        victim = redis_cluster.node_of_slot(key_slot(stream_key(s.video_anchor_ids[0] % SHARDS).encode()))
        victim.stop()
        others = [d for d in docs(60, 60)
                  if redis_cluster.node_of_slot(key_slot(stream_key(d["anchor_id"] % SHARDS).encode()))
                  is not victim]
        assert others
        await until(lambda: _written(topology, others), timeout=20)
        await until(lambda: worker.stats.applied == 60 + len(others), timeout=20)
        victim.start()
        redis_cluster.wait_ok()
        await until(lambda: _written(topology, docs(120, 60)), timeout=20)
        await until(lambda: worker.stats.applied == 120 + len(others), timeout=20)
    finally:
        worker.stop()
        await asyncio.wait_for(task, 10)
        await topology.aclose()


async def _written(topology: RedisTopology, docs: list[dict[str, Any]]) -> bool:
    """Write once the cluster takes writes again (the restarted node may answer CLUSTERDOWN)."""
    try:
        await write_events(topology.client, docs, shards=SHARDS)  # type: ignore[arg-type]
    except (RedisError, OSError):
        return False
    return True


async def test_the_example_consumer_exports_from_the_cluster(redis_cluster: RedisCluster3,
                                                            tmp_path: Path) -> None:
    """examples/jsonl_export.py --cluster-nodes: an independent consumer group on every node."""
    topology = RedisTopology("redis://127.0.0.1:1/0", tuple(redis_cluster.seeds.split(",")))
    now = int(time.time() * 1000)
    docs = [event(ts_ms=now + i, anchor_id=i, viewer_id=i) for i in range(30)]
    try:
        await write_events(topology.client, docs, shards=SHARDS)  # type: ignore[arg-type]
    finally:
        await topology.aclose()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "examples" / "jsonl_export.py"), "--cluster-nodes",
        redis_cluster.seeds, "--shards", str(SHARDS), "--out", str(tmp_path), "--once",
        stdout=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    assert proc.returncode == 0 and orjson.loads(out) == {"exported": 30}
    lines = [orjson.loads(line) for f in tmp_path.glob("clicks-*.jsonl") for line in f.read_bytes().splitlines()]
    assert sorted(d["event_id"] for d in lines) == sorted(d["event_id"] for d in docs)


async def test_rate_limits_hold_on_the_cluster(
        redis_cluster: RedisCluster3, start_server: ServerFactory, make_account: AccountFactory,
        http: ClientSession) -> None:
    """A management call charges its client and its token (buckets in two slots) and looks at the
    guessed-token buckets (a third): on a cluster the script calls go out one per slot (its
    pipelines refuse EVALSHA; this was a 500). A node without the script (restarted, or new)
    makes only its own call run again: the others' buckets are charged once."""
    server = await _start(start_server, redis_cluster, rate_api_token_burst=3, rate_api_token_per_s=0.01)
    limits = server.app[RATE_LIMITS]
    guess_port = _node_port(redis_cluster, target_key("x"))
    token = (await make_account("seller")).token
    while _node_port(redis_cluster, token_key(limits.credential(token))) == guess_port:
        token = (await make_account("seller")).token  # one whose bucket is on another node
    one = Api(http, _url(server), token)
    two = Api(http, _url(server), (await make_account("seller")).token)
    assert (await two.get("/api/v1/me")).status == 200  # the script is loaded on every node...
    guess_node = await _on_node(guess_port)
    try:
        await guess_node.script_flush()  # ...then lost by the guessed-token buckets' node only
    finally:
        await guess_node.aclose()
    for _ in range(3):
        assert (await one.get("/api/v1/me")).status == 200
    refused = await one.get("/api/v1/me")
    assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1, refused.body
    assert (await two.get("/api/v1/me")).status == 200
    # A failed token is charged to its client's and its guessed head and tail's buckets (two slots).
    wrong = Api(http, _url(server), new_token())
    assert (await wrong.get("/api/v1/me")).error_code == "invalid_token"
