"""SQL for accounts and API tokens."""

from __future__ import annotations

import asyncpg

from shoplink.auth.models import Account, Principal, Role
from shoplink.db import Conn


def _account(row: asyncpg.Record) -> Account:
    return Account(id=row["id"], name=row["name"], roles=tuple(Role(r) for r in row["roles"]),
                   created_at=row["created_at"], disabled=row["disabled_at"] is not None)


async def insert_account(con: Conn, name: str, roles: list[str]) -> Account:
    row = await con.fetchrow(
        "INSERT INTO accounts (name, roles) VALUES ($1, $2) RETURNING *", name, roles)
    assert row is not None
    return _account(row)


async def get_account(con: Conn, account_id: int) -> Account | None:
    row = await con.fetchrow("SELECT * FROM accounts WHERE id = $1", account_id)
    return _account(row) if row else None


async def account_names(con: Conn, account_ids: list[int]) -> dict[int, str]:
    rows = await con.fetch("SELECT id, name FROM accounts WHERE id = ANY($1::bigint[])", account_ids)
    return {r["id"]: r["name"] for r in rows}


async def list_accounts(con: Conn, limit: int, after_id: int) -> list[Account]:
    rows = await con.fetch("SELECT * FROM accounts WHERE id > $1 ORDER BY id LIMIT $2",
                           after_id, limit)
    return [_account(r) for r in rows]


async def insert_token(con: Conn, account_id: int, token_hash: bytes,
                       label: str) -> asyncpg.Record:
    row = await con.fetchrow(
        """INSERT INTO api_tokens (account_id, token_hash, label) VALUES ($1, $2, $3)
           RETURNING id, account_id, label, created_at""", account_id, token_hash, label)
    assert row is not None
    return row


async def principal_for_token(con: Conn, token_hash: bytes) -> Principal | None:
    row = await con.fetchrow(
        """SELECT t.id AS token_id, a.id, a.name, a.roles
             FROM api_tokens t JOIN accounts a ON a.id = t.account_id
            WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND a.disabled_at IS NULL""",
        token_hash)
    if row is None:
        return None
    return Principal(account_id=row["id"], name=row["name"],
                     roles=frozenset(Role(r) for r in row["roles"]), token_id=row["token_id"])


async def token_owner(con: Conn, token_id: int) -> int | None:
    owner: int | None = await con.fetchval(
        "SELECT account_id FROM api_tokens WHERE id = $1", token_id)
    return owner


async def revoke_token(con: Conn, token_id: int) -> None:
    await con.execute(
        "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1", token_id)


async def list_tokens(con: Conn, account_id: int) -> list[asyncpg.Record]:
    return await con.fetch(
        """SELECT id, label, created_at, revoked_at FROM api_tokens
            WHERE account_id = $1 ORDER BY id""", account_id)


async def find_account_by_name(con: Conn, name: str) -> Account | None:
    row = await con.fetchrow("SELECT * FROM accounts WHERE name = $1 ORDER BY id LIMIT 1", name)
    return _account(row) if row else None
