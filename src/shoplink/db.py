"""PostgreSQL: the pool factory and the migration runner.

Migrations are the files `schemas/sql/NNNN_name.sql`, applied in order, each in its own
transaction, and recorded in `schema_migrations` with a checksum so that re-running is a
no-op and an edited, already-applied file is reported instead of silently ignored.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

from shoplink.paths import SQL_DIR

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_ID = 0x5110_0001  # pg_advisory_lock key: one migrator at a time


# A connection as repositories receive it: a plain one or one borrowed from the pool.
Conn = asyncpg.Connection | PoolConnectionProxy


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


async def _init_connection(con: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await con.set_type_codec(typename, encoder=lambda v: orjson.dumps(v).decode(),
                                 decoder=orjson.loads, schema="pg_catalog")


class Pool(asyncpg.Pool):
    """asyncpg's pool whose `acquire()` gives up after `acquire_timeout_s` by default (TimeoutError),
    so that a request never queues for long behind connections that PostgreSQL no longer serves."""

    acquire_timeout_s: float | None = None

    def acquire(self, *, timeout: float | None = None) -> Any:
        return super().acquire(timeout=self.acquire_timeout_s if timeout is None else timeout)


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10,
                      timeout_s: float = 5.0, command_timeout_s: float = 30.0) -> asyncpg.Pool:
    """A pool whose connects and acquires wait at most `timeout_s` and whose statements at most
    `command_timeout_s` (TimeoutError beyond; the error middleware answers 503). Connections that
    PostgreSQL closed (a restart) are replaced on the next acquire, so the pool recovers by itself
    when the server returns."""
    pool = Pool(dsn, min_size=min_size, max_size=max_size, max_queries=50_000,
                max_inactive_connection_lifetime=300.0, init=_init_connection, loop=None,
                connection_class=asyncpg.Connection, record_class=asyncpg.Record,
                command_timeout=command_timeout_s, timeout=timeout_s)
    pool.acquire_timeout_s = timeout_s
    await pool
    return pool


def load_migrations(directory: Path = SQL_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _MIGRATION_NAME.match(path.name)
        if not match:
            raise MigrationError(f"migration file name not NNNN_name.sql: {path.name}")
        migrations.append(Migration(match[1], match[2], path.read_text(encoding="utf-8")))
    versions = [m.version for m in migrations]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a version in {directory}")
    return migrations


async def _applied(con: Conn) -> dict[str, str]:
    exists = await con.fetchval("SELECT to_regclass('public.schema_migrations') IS NOT NULL")
    if not exists:
        return {}
    rows = await con.fetch("SELECT version, checksum FROM schema_migrations")
    return {r["version"]: r["checksum"] for r in rows}


async def pending_migrations(con: Conn,
                             migrations: list[Migration] | None = None) -> list[Migration]:
    migrations = load_migrations() if migrations is None else migrations
    applied = await _applied(con)
    for m in migrations:
        if m.version in applied and applied[m.version] != m.checksum:
            raise MigrationError(f"migration {m.version}_{m.name} was changed after it was applied")
    return [m for m in migrations if m.version not in applied]


async def migrate(con: Conn, migrations: list[Migration] | None = None) -> list[str]:
    """Apply pending migrations; returns the names applied (empty when up to date)."""
    await con.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
    try:
        await con.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())""")
        done = []
        for m in await pending_migrations(con, migrations):
            async with con.transaction():
                await con.execute(m.sql)
                await con.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    m.version, m.name, m.checksum)
            log.info("migration applied", extra={"migration": f"{m.version}_{m.name}"})
            done.append(f"{m.version}_{m.name}")
        return done
    finally:
        await con.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)


async def connect(dsn: str) -> asyncpg.Connection:
    con: Any = await asyncpg.connect(dsn)
    await _init_connection(con)
    return con  # type: ignore[no-any-return]
