"""Attribution as deployed: web instances answer clicks and leave the streams alone
(SHOPLINK_ATTRIBUTION_CONSUMER is off by default, and in the test app); `shoplink count` stores
the plan clicks."""

from __future__ import annotations

import contextlib
import signal
import socket

import asyncpg
import orjson
import pytest
from aiohttp import ClientError, ClientSession
from redis.asyncio import Redis

from shoplink.config import Settings
from shoplink.streams import stream_key

from support.affiliate_data import (
    create_plan,
    insert_anchor,
    seller_with_products,
    wait_for_clicks,
)
from support.api import AccountFactory, Api
from support.click_data import make_shop, video_anchor, wait_for_events
from support.count import run_count, start_count_worker, stop_count_worker
from support.services import free_port
from support.wait import stays_true, until

SHARDS = 4


async def _plan_anchor(make_account: AccountFactory, pool: asyncpg.Pool) -> tuple[Api, str]:
    seller, _, products = await seller_with_products(make_account, prices=["20.00"])
    plan = await create_plan(seller, products, rate="10.00")
    creator = await make_account("creator")
    assert (await creator.post(f"/api/v1/plans/{plan['id']}/join")).status == 201
    _, code = await insert_anchor(pool, creator_id=creator.account_id or 0, product_id=products[0],
                                  plan_id=plan["id"])
    return creator, code


async def _click(anon: Api, code: str) -> str:
    reply = await anon.get(f"/r/{code}")
    assert reply.status == 302, reply.body
    click_id: str = reply.headers["Location"].rsplit("sl_click=", 1)[1].split("&")[0].split("#")[0]
    return click_id


async def _groups(redis: Redis) -> set[str]:
    names: set[str] = set()
    for shard in range(SHARDS):
        if await redis.exists(stream_key(shard)):
            names |= {g["name"].decode() for g in await redis.xinfo_groups(stream_key(shard))}
    return names


async def _stored(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as con:
        count: int = await con.fetchval("SELECT count(*) FROM attributed_clicks")
    return count


async def _stored_is(pool: asyncpg.Pool, count: int) -> bool:
    return await _stored(pool) == count


async def test_the_count_worker_stores_plan_clicks_the_web_instance_left_alone(
        settings: Settings, make_account: AccountFactory, anon: Api, pool: asyncpg.Pool, redis: Redis) -> None:
    _, code = await _plan_anchor(make_account, pool)
    ids = [await _click(anon, code) for _ in range(5)]
    await wait_for_events(redis, 5)  # in the streams: a consumer inside the app could store them
    # Nothing can end this wait early (nothing happens): watch for longer than such a consumer
    # takes to read (its BLOCK_MS and PAUSE_S) and store.
    await stays_true(lambda: _stored_is(pool, 0), for_s=0.5)
    assert await _stored(pool) == 0
    assert "attribution" not in await _groups(redis)

    exit_code, out, err = await run_count(settings, "--exit-when-idle")
    assert exit_code == 0, err
    report = orjson.loads(out)
    assert report["applied"] == 5  # counted too
    assert report["attribution"] == {"stored": 5, "duplicates": 0, "skipped": 0, "malformed": 0,
                                     "credited": 0, "expired": 0}
    await wait_for_clicks(pool, ids, timeout=1)

    # everything was acknowledged: a second run finds nothing to store again
    exit_code, out, err = await run_count(settings, "--exit-when-idle")
    assert exit_code == 0, err
    assert orjson.loads(out)["attribution"]["stored"] == 0
    assert await _stored(pool) == 5


async def test_no_attribution_leaves_the_attribution_group_alone(
        settings: Settings, make_account: AccountFactory, anon: Api, pool: asyncpg.Pool, redis: Redis) -> None:
    _, code = await _plan_anchor(make_account, pool)
    await _click(anon, code)
    exit_code, out, err = await run_count(settings, "--exit-when-idle", "--no-attribution")
    assert exit_code == 0, err
    assert orjson.loads(out)["attribution"] is None
    assert await _stored(pool) == 0
    assert await _groups(redis) == {"counters"}


async def test_a_running_count_worker_attributes_clicks_as_they_come_and_stops_on_sigterm(
        settings: Settings, make_account: AccountFactory, anon: Api, pool: asyncpg.Pool) -> None:
    _, code = await _plan_anchor(make_account, pool)
    worker = await start_count_worker(settings)
    try:
        first = [await _click(anon, code) for _ in range(3)]
        await wait_for_clicks(pool, first, timeout=20)
        later = [await _click(anon, code) for _ in range(2)]
        await wait_for_clicks(pool, later, timeout=20)
    finally:
        assert worker.returncode is None, "the worker stopped by itself"
        worker.send_signal(signal.SIGTERM)
        exit_code, err = await stop_count_worker(worker)
    assert exit_code == 0, err
    assert await _stored(pool) == 5


async def _scrape(http: ClientSession, port: int) -> dict[str, float]:
    async with http.get(f"http://127.0.0.1:{port}/metrics") as reply:
        assert reply.status == 200
        text = await reply.text()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


async def test_a_count_process_serves_its_own_counters_on_its_metrics_port(
        settings: Settings, make_account: AccountFactory, anon: Api, pool: asyncpg.Pool) -> None:
    _, planned = await _plan_anchor(make_account, pool)
    _, plain, _ = await video_anchor(pool, await make_shop(await make_account("seller")))
    for _ in range(3):
        await _click(anon, planned)
    for _ in range(4):
        await _click(anon, plain)
    port = free_port()
    worker = await start_count_worker(settings, count_metrics_port=str(port))
    expected = {"shoplink_count_applied_total": 7.0,
                'shoplink_attribution_events_total{result="stored"}': 3.0,
                'shoplink_attribution_events_total{result="skipped"}': 4.0}
    seen: dict[str, float] = {}
    async with ClientSession() as http:
        async def counted() -> bool:
            nonlocal seen
            with contextlib.suppress(ClientError):  # not listening yet
                seen = await _scrape(http, port)
            return all(seen.get(name) == value for name, value in expected.items())

        try:
            await until(counted, timeout=30, interval=0.1)
            assert seen["shoplink_count_dead_total"] == 0
        finally:
            worker.send_signal(signal.SIGTERM)
            exit_code, err = await stop_count_worker(worker)
        assert exit_code == 0, err
        with pytest.raises(ClientError):  # gone with the process
            await _scrape(http, port)


async def test_a_busy_metrics_port_stops_the_count_process_with_a_clear_message(settings: Settings) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        exit_code, _, err = await run_count(settings, "--exit-when-idle", count_metrics_port=port)
    assert exit_code == 1
    assert f"cannot serve /metrics on port {port}" in err and "Traceback" not in err
