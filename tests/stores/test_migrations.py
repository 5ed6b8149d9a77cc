"""Migrations apply in order, are recorded, and re-running is a no-op; edits are detected."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoplink import db

from support.services import admin_database_url, create_database, drop_database


async def test_fresh_database_migrates_once() -> None:
    admin = admin_database_url()
    url = await create_database(admin)
    try:
        con = await db.connect(url)
        try:
            assert await db.pending_migrations(con) == db.load_migrations()
            first = await db.migrate(con)
            assert first == [f"{m.version}_{m.name}" for m in db.load_migrations()]
            assert await db.migrate(con) == []
            assert await db.pending_migrations(con) == []
            recorded = await con.fetchval("SELECT count(*) FROM schema_migrations")
            assert recorded == len(first)
        finally:
            await con.close()
    finally:
        await drop_database(admin, url)


async def test_changed_migration_is_reported(tmp_path: Path) -> None:
    admin = admin_database_url()
    url = await create_database(admin)
    try:
        con = await db.connect(url)
        try:
            (tmp_path / "0001_one.sql").write_text("CREATE TABLE t1 (id int);")
            await db.migrate(con, db.load_migrations(tmp_path))
            (tmp_path / "0001_one.sql").write_text("CREATE TABLE t1 (id bigint);")
            with pytest.raises(db.MigrationError, match="changed after it was applied"):
                await db.migrate(con, db.load_migrations(tmp_path))
        finally:
            await con.close()
    finally:
        await drop_database(admin, url)


async def test_failed_migration_rolls_back(tmp_path: Path) -> None:
    admin = admin_database_url()
    url = await create_database(admin)
    try:
        con = await db.connect(url)
        try:
            (tmp_path / "0001_ok.sql").write_text("CREATE TABLE ok (id int);")
            (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half (id int); SELECT nonsense;")
            with pytest.raises(Exception, match="nonsense"):
                await db.migrate(con, db.load_migrations(tmp_path))
            assert await con.fetchval("SELECT to_regclass('half')") is None
            assert await con.fetchval("SELECT count(*) FROM schema_migrations") == 1
        finally:
            await con.close()
    finally:
        await drop_database(admin, url)


def test_bad_file_name(tmp_path: Path) -> None:
    (tmp_path / "1_x.sql").write_text("")
    with pytest.raises(db.MigrationError):
        db.load_migrations(tmp_path)
