"""Fixtures: a fresh PostgreSQL database and a private Redis per test session, clean state per test,
and the real app served over real HTTP. Nothing here is mocked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from shoplink import db
from shoplink.app import create_app, install_fast_dispatch, install_read_timeouts
from shoplink.auth.service import AuthService
from shoplink.config import Settings

from support.api import METRICS_TOKEN, Account, AccountFactory, Api, ServerFactory
from support.cluster import RedisCluster3
from support.count import start_count_worker, stop_count_worker
from support.dns_server import DnsServer
from support.dns_server import shared as shared_dns
from support.services import RedisProcess, admin_database_url, create_database, drop_database

TEST_SECRET = "test-secret-key-0123456789abcdef"


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    admin = admin_database_url()
    url = await create_database(admin)
    con = await db.connect(url)
    try:
        await db.migrate(con)
    finally:
        await con.close()
    yield url
    await drop_database(admin, url)


@pytest.fixture(scope="session")
def redis_proc() -> Iterator[RedisProcess]:
    proc = RedisProcess()
    proc.start()
    yield proc
    proc.cleanup()


@pytest.fixture
def own_redis() -> Iterator[RedisProcess]:
    """A redis-server of the test's own, to stop, freeze, restart or kill underneath the code."""
    proc = RedisProcess()
    proc.start()
    yield proc
    proc.cleanup()


@pytest.fixture(scope="session")
def _session_cluster() -> Iterator[RedisCluster3]:
    cluster = RedisCluster3()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture
def redis_cluster(_session_cluster: RedisCluster3) -> RedisCluster3:
    """A real 3-node Redis Cluster (started once per session, on first use), flushed."""
    _session_cluster.wait_ok()
    _session_cluster.flushall()
    return _session_cluster


@pytest.fixture(scope="session")
async def _session_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await db.create_pool(database_url, min_size=1, max_size=5)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
async def _session_redis(redis_proc: RedisProcess) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_proc.url)
    yield client
    await client.aclose()


async def reset_state(pool: asyncpg.Pool, redis: Redis) -> None:
    async with pool.acquire() as con:
        tables = [r["tablename"] for r in await con.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'schema_migrations'")]
        if tables:
            await con.execute(
                f"TRUNCATE {', '.join(f'{t!s}' for t in tables)} RESTART IDENTITY CASCADE")
    await redis.flushall()


@pytest.fixture
async def pool(_session_pool: asyncpg.Pool, _session_redis: Redis) -> asyncpg.Pool:
    """The session's pool, with every table emptied and Redis flushed before the test."""
    await reset_state(_session_pool, _session_redis)
    return _session_pool


@pytest.fixture
async def redis(pool: asyncpg.Pool, _session_redis: Redis) -> Redis:
    return _session_redis


@pytest.fixture
def dns() -> DnsServer:
    """The test DNS server on loopback (every app under test asks it), emptied for the test."""
    server = shared_dns()
    server.clear()
    return server


@pytest.fixture
def settings(database_url: str, redis_proc: RedisProcess, tmp_path: Path, dns: DnsServer) -> Settings:
    """The settings of the test app, as deployed: its web instances answer clicks and leave the
    streams alone (no attribution consumer inside); `shoplink count` (`count_worker`) counts and
    attributes. Every app under test resolves names through the test DNS server on loopback."""
    return Settings.from_env(
        {}, database_url=database_url, redis_url=redis_proc.url, secret_key=TEST_SECRET,
        media_dir=tmp_path / "media", public_base_url="http://127.0.0.1:8080",
        access_log=False, log_level="warning", spool_dir=tmp_path / "spool", metrics_token=METRICS_TOKEN,
        dns_nameservers=(dns.address,), dns_timeout_s=1.0)


@pytest.fixture
async def count_worker(pool: asyncpg.Pool, settings: Settings) -> AsyncIterator[asyncio.subprocess.Process]:
    """`shoplink count` running beside the test's app for the whole test, as deployed: the process
    that counts the clicks and stores the plan clicks (attribution). It must stop cleanly on SIGTERM
    at the end."""
    worker = await start_count_worker(settings)
    try:
        yield worker
    finally:
        code, err = await stop_count_worker(worker)
    assert code == 0, err[-3000:]


@pytest.fixture
async def start_server(pool: asyncpg.Pool, settings: Settings) -> AsyncIterator[ServerFactory]:
    """Start real app instances over HTTP; `await start_server(**setting_overrides)`."""
    started: list[TestServer] = []

    async def start(app: web.Application | None = None, **overrides: Any) -> TestServer:
        server = TestServer(app or create_app(settings.replace(**overrides)), host="127.0.0.1")
        await server.start_server()
        assert isinstance(server.runner, web.AppRunner)
        install_fast_dispatch(server.runner)  # as `shoplink serve` does
        install_read_timeouts(server.runner)
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        await server.close()


@pytest.fixture
async def server(start_server: ServerFactory) -> TestServer:
    return await start_server()


@pytest.fixture
async def http() -> AsyncIterator[ClientSession]:
    async with ClientSession() as session:
        yield session


@pytest.fixture
def base_url(server: TestServer) -> str:
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
def make_account(pool: asyncpg.Pool, http: ClientSession, base_url: str) -> AccountFactory:
    """`await make_account("seller", name=...)` -> an Api client authenticated as a new account."""
    counter = iter(range(1, 10_000))

    async def make(*roles: str, name: str | None = None) -> Account:
        account, token = await AuthService(pool).create_account(
            name or f"{'-'.join(roles)}-{next(counter)}", list(roles))
        return Account(http, base_url, token.token, account.id)

    return make


@pytest.fixture
def anon(http: ClientSession, base_url: str) -> Api:
    return Api(http, base_url, None)
