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


async def test_domain_verification_upgrade_leaves_every_domain_pending() -> None:
    """0009: domains registered before verification existed are pending with a token, not verified;
    the watcher looks at them at once; anchors on them stop redirecting until they are proven."""
    admin = admin_database_url()
    url = await create_database(admin)
    try:
        con = await db.connect(url)
        try:
            migrations = db.load_migrations()
            before = [m for m in migrations if m.version < "0009"]
            await db.migrate(con, before)
            owner = await con.fetchval("INSERT INTO accounts (name, roles) VALUES ('s', '{seller}') RETURNING id")
            shop = await con.fetchval("INSERT INTO shops (owner_id, name) VALUES ($1, 'old') RETURNING id", owner)
            await con.execute("INSERT INTO shop_domains (shop_id, domain, include_subdomains) VALUES "
                              "($1, 'old.example', false), ($1, 'wild.example', true)", shop)
            assert await db.migrate(con) == [f"{m.version}_{m.name}" for m in migrations if m.version >= "0009"]
            rows = await con.fetch("SELECT * FROM shop_domains ORDER BY domain")
            assert [(r["domain"], r["state"], r["include_subdomains"]) for r in rows] == [
                ("old.example", "pending", False), ("wild.example", "pending", True)]
            for row in rows:
                assert row["verified_at"] is None and row["verified_by"] is None
                assert len(row["token"]) == 32 and int(row["token"], 16) >= 0
                assert row["next_check_at"] is not None
            assert rows[0]["token"] != rows[1]["token"]
            assert await con.fetchval("SELECT count(*) FROM domain_audit") == 0
        finally:
            await con.close()
    finally:
        await drop_database(admin, url)
