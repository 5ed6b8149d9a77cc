"""PostgreSQL stopped (or frozen) under a running app, on a private cluster this test starts and stops:
redirects of cached anchors keep working (stale past their TTL), management calls answer 503 with
Retry-After and a JSON error, /readyz says not ready, and everything recovers by itself when
PostgreSQL returns (no restart of the app)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest
from aiohttp import ClientSession, ClientTimeout
from redis.asyncio import Redis

from shoplink import db
from shoplink.auth.service import AuthService
from shoplink.config import Settings

from support.affiliate_data import click_event, wait_for_clicks, xadd_click
from support.api import METRICS_AUTH, Api, Reply, ServerFactory
from support.click_data import make_shop, video_anchor, wait_for_events
from support.count import count_metric, start_count_worker, stop_count_worker
from support.load import wait_for_count_group
from support.postgres import PostgresProcess
from support.services import free_port
from support.wait import until

pytestmark = pytest.mark.slow


@dataclass
class Cluster:
    proc: PostgresProcess
    url: str
    pool: asyncpg.Pool  # the test's own pool, for seeding (not used while the server is down)


@pytest.fixture
async def own_pg() -> AsyncIterator[Cluster]:
    proc = PostgresProcess()
    await asyncio.to_thread(proc.init)
    await asyncio.to_thread(proc.start)
    try:
        admin = await asyncpg.connect(proc.url())
        await admin.execute("CREATE DATABASE shoplink")
        await admin.close()
        url = proc.url("shoplink")
        con = await db.connect(url)
        await db.migrate(con)
        await con.close()
        pool = await db.create_pool(url, min_size=1, max_size=2)
        try:
            yield Cluster(proc, url, pool)
        finally:
            pool.terminate()
    finally:
        await asyncio.to_thread(proc.cleanup)


def assert_unavailable(reply: Reply, code: str = "unavailable") -> None:
    assert reply.status == 503, (reply.status, reply.body)
    assert int(reply.headers["Retry-After"]) > 0
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.error_code == code, reply.body


async def test_postgres_stopped_while_serving(own_pg: Cluster, start_server: ServerFactory, http: ClientSession,
                                              redis: Redis) -> None:
    server = await start_server(database_url=own_pg.url, click_cache_ttl_s=0.2, db_timeout_s=2)
    base = str(server.make_url(""))
    account, token = await AuthService(own_pg.pool).create_account("seller", ["seller"])
    seller = Api(http, base, token.token, account.id)
    viewer = Api(http, base, None)
    shop = await make_shop(seller)
    _, cached, video = await video_anchor(own_pg.pool, shop)
    _, cold, _ = await video_anchor(own_pg.pool, shop)  # never clicked before the outage
    assert (await viewer.get(f"/v1/videos/{video}/anchors")).status == 200  # timeline cached
    first = await viewer.get(f"/r/{cached}")
    assert first.status == 302
    head = first.headers["Location"].rsplit("sl_click=", 1)[0]
    answered = 1

    await asyncio.to_thread(own_pg.proc.stop)
    await asyncio.sleep(0.3)  # past the cache TTL (0.2 s): every click below is a refresh that cannot load
    for _ in range(3):
        reply = await viewer.get(f"/r/{cached}")
        assert reply.status == 302 and reply.headers["Location"].startswith(head)  # stale, served
        answered += 1
    assert_unavailable(await viewer.get(f"/r/{cold}", headers={"Accept": "application/json"}),
                       "resolver_unavailable")
    assert_unavailable(await seller.get("/api/v1/shops"))
    assert_unavailable(await seller.post(f"/api/v1/shops/{shop.shop_id}/products",
                                         {"title": "New", "url": "https://acme.example/p/new"}))
    ready = await viewer.get("/readyz")
    assert ready.status == 503 and ready.body["checks"]["postgres"] != "ok"
    assert ready.body["checks"]["redis"] == "ok"
    assert (await viewer.get("/healthz")).status == 200
    signed_in = {"Cookie": "sl_session=" + "x" * 43}  # any session cookie used to mean a lookup
    assert (await viewer.get("/v1/player.js", headers=signed_in)).status == 200
    assert (await viewer.get(f"/v1/videos/{video}/anchors", headers=signed_in)).status == 200
    metrics = (await viewer.get("/metrics", headers=METRICS_AUTH)).body
    assert 'shoplink_click_cache_total{result="stale"} 3' in metrics

    await asyncio.to_thread(own_pg.proc.start)  # the app is not restarted
    assert (await viewer.get("/readyz")).status == 200
    assert (await seller.get("/api/v1/shops")).status == 200
    created = await seller.post(f"/api/v1/shops/{shop.shop_id}/products",
                                {"title": "New", "url": "https://acme.example/p/new"})
    assert created.status == 201, created.body
    async def resolved() -> Reply | None:  # a code that failed waits out the resolver's retry pause (1 s)
        reply = await viewer.get(f"/r/{cold}")
        return reply if reply.status != 503 else None

    reply = await until(resolved, interval=0.05)
    assert reply.status == 302
    answered += 1
    assert (await viewer.get(f"/r/{cached}")).status == 302
    answered += 1
    # every answered click is an event; the refused ones are none
    assert len(await wait_for_events(redis, answered)) == answered


async def test_frozen_postgres_fails_requests_fast_instead_of_hanging(
        own_pg: Cluster, start_server: ServerFactory, settings: Settings, redis: Redis) -> None:
    """PostgreSQL that accepts connections but answers nothing (SIGSTOP): the connect, acquire and
    statement timeouts turn every database wait into a 503 instead of a request that hangs."""
    server = await start_server(database_url=own_pg.url, click_cache_ttl_s=0.2, db_timeout_s=0.5,
                                db_command_timeout_s=1, db_pool_max=2)
    base = str(server.make_url(""))
    account, token = await AuthService(own_pg.pool).create_account("seller", ["seller"])
    # Plan clicks are attributed by `shoplink count`, as deployed, with the same short timeouts.
    metrics_port = free_port()
    worker = await start_count_worker(settings.replace(database_url=own_pg.url), db_timeout_s=0.5,
                                      db_command_timeout_s=1, count_metrics_port=metrics_port)
    # The client gives up far later than the server should: a hang fails the test.
    async with ClientSession(timeout=ClientTimeout(total=20)) as http:
        try:
            await wait_for_count_group(redis)  # it runs: connected to PostgreSQL before the freeze
            seller = Api(http, base, token.token, account.id)
            viewer = Api(http, base, None)
            shop = await make_shop(seller)
            _, cached, _ = await video_anchor(own_pg.pool, shop)
            _, cold, _ = await video_anchor(own_pg.pool, shop)
            assert (await viewer.get(f"/r/{cached}")).status == 302
            pids = await asyncio.to_thread(own_pg.proc.freeze)
            try:
                await asyncio.sleep(0.3)  # past the cache TTL (0.2 s): a click must refresh the anchor
                # a pooled connection hangs (statement timeout), new ones too (connect timeout), and
                # the pool of two runs dry (acquire timeout): all of it ends as 503s
                replies = await asyncio.gather(*(seller.get("/api/v1/shops") for _ in range(4)))
                for reply in replies:
                    assert_unavailable(reply)
                # the refresh of a cached anchor fails the same way; the click is served stale
                assert (await viewer.get(f"/r/{cached}")).status == 302
                assert (await viewer.get(f"/r/{cached}")).status == 302
                assert_unavailable(await viewer.get(f"/r/{cold}"), "resolver_unavailable")
                assert (await viewer.get("/readyz")).status == 503
                # plan clicks reach the attribution consumer, whose inserts hang and time out
                now_ms = int(time.time() * 1000)
                plan_clicks = [click_event(anchor_id=n, product_id=1, shop_id=shop.shop_id,
                                           creator_id=account.id, plan_id=7, rate_bp=1000, ts_ms=now_ms)
                               for n in range(4)]
                for event in plan_clicks:
                    await xadd_click(redis, event)
                await until(lambda: count_metric(http, metrics_port, "shoplink_attribution_errors_total"),
                            timeout=15, interval=0.1)
            finally:
                own_pg.proc.thaw(pids)

            async def served() -> bool:  # connections the timeouts abandoned are replaced by new ones
                return (await seller.get("/api/v1/shops")).status == 200

            await until(served, interval=0.05)
            assert len(await wait_for_events(redis, 3 + 4)) == 3 + 4
            # the attribution consumer outlived the timeouts and stores them now
            await wait_for_clicks(own_pg.pool, [e["event_id"] for e in plan_clicks], timeout=15)
        finally:
            code, err = await stop_count_worker(worker)
        assert code == 0, err[-3000:]
