"""The CLI as a user runs it (subprocesses), and readiness when a store is down."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from support.api import Api, ServerFactory
from support.services import RedisProcess, admin_database_url, create_database, drop_database, free_port


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPLINK_")}
    env.update(extra)
    return env


async def _run(*args: str, env: dict[str, str], timeout: float = 60) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "shoplink", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_bad_setting_stops_startup_with_one_line() -> None:
    code, _out, err = await _run("migrate", env=_env(SHOPLINK_PORT="eighty"))
    assert code == 2
    assert err.strip().count("\n") == 0 and "SHOPLINK_PORT" in err


async def test_serve_refuses_the_default_secret_key_off_loopback(redis_proc: RedisProcess) -> None:
    """The public default key would make sessions forgeable and viewer hashes reversible: a
    server reachable from elsewhere does not start with it (one line naming the variable)."""
    base = _env(SHOPLINK_REDIS_URL=redis_proc.url, SHOPLINK_PORT=str(free_port()),
                SHOPLINK_DATABASE_URL="postgresql://nobody@127.0.0.1:9/none")
    for extra in ({"SHOPLINK_PUBLIC_BASE_URL": "https://links.example.com"},
                  {"SHOPLINK_HOST": "0.0.0.0"},
                  {"SHOPLINK_HOST": "0.0.0.0", "SHOPLINK_PUBLIC_BASE_URL": "http://127.0.0.1:8080"}):
        code, _, err = await _run("serve", env={**base, **extra}, timeout=30)
        assert code == 2, (extra, err)
        assert err.strip().count("\n") == 0 and "SHOPLINK_SECRET_KEY" in err and "refusing" in err, err
    # With a key of its own the same server goes on to its next step (here: no database to reach).
    code, _, err = await _run("serve", env={**base, "SHOPLINK_PUBLIC_BASE_URL": "https://links.example.com",
                                            "SHOPLINK_SECRET_KEY": "a-real-secret-of-32-characters!!"},
                              timeout=30)
    assert code == 1 and "SHOPLINK_SECRET_KEY" not in err, err


async def test_serve_refuses_unmigrated_database_then_migrate_and_accounts(redis_proc: RedisProcess) -> None:
    admin = admin_database_url()
    url = await create_database(admin)
    try:
        env = _env(SHOPLINK_DATABASE_URL=url, SHOPLINK_REDIS_URL=redis_proc.url,
                   SHOPLINK_PORT=str(free_port()))
        code, _, err = await _run("serve", env=env)
        assert code == 1 and "shoplink migrate" in err
        code, out, _ = await _run("migrate", env=env)
        assert code == 0 and json.loads(out)["applied"]
        code, out, _ = await _run("migrate", env=env)
        assert code == 0 and json.loads(out) == {"applied": []}
        code, out, _ = await _run("accounts", "create", "--role", "seller", "--role", "creator",
                                  "--name", "Dana", env=env)
        assert code == 0
        created: dict[str, Any] = json.loads(out)
        assert set(created) >= {"id", "token"} and created["token"].startswith("slk_")
        assert created["roles"] == ["creator", "seller"]
        code, out, _ = await _run("accounts", "token", "--account-id", str(created["id"]), env=env)
        assert code == 0 and json.loads(out)["token"] != created["token"]
    finally:
        await drop_database(admin, url)


async def test_readyz_fails_when_redis_is_down(start_server: ServerFactory, anon: Api) -> None:
    proc = RedisProcess()
    proc.start()
    try:
        server = await start_server(redis_url=proc.url)
        api = Api(anon.session, str(server.make_url("")), None)
        assert (await api.get("/readyz")).status == 200
        proc.stop()
        reply = await api.get("/readyz")
        assert reply.status == 503
        assert reply.body["checks"]["postgres"] == "ok" and reply.body["checks"]["redis"] != "ok"
        assert (await api.get("/healthz")).status == 200
    finally:
        proc.cleanup()


async def test_readyz_fails_when_postgres_is_gone(start_server: ServerFactory, anon: Api) -> None:
    admin = admin_database_url()
    url = await create_database(admin)
    from shoplink import db

    con = await db.connect(url)
    await db.migrate(con)
    await con.close()
    server = await start_server(database_url=url)
    api = Api(anon.session, str(server.make_url("")), None)
    assert (await api.get("/readyz")).status == 200
    await drop_database(admin, url)  # terminates the app's connections
    reply = await api.get("/readyz")
    assert reply.status == 503 and reply.body["checks"]["postgres"] != "ok"
