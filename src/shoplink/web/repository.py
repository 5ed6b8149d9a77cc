"""SQL for browser sessions."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from shoplink.db import Conn


async def insert_session(con: Conn, id_hash: bytes, account_id: int, token_id: int | None, csrf: str,
                         ttl: timedelta) -> None:
    await con.execute(
        """INSERT INTO web_sessions (id_hash, account_id, token_id, csrf_token, expires_at)
           VALUES ($1, $2, $3, $4, now() + $5::interval)""",
        id_hash, account_id, token_id, csrf, ttl)


async def find_session(con: Conn, id_hash: bytes) -> asyncpg.Record | None:
    """A live session whose token is not revoked and whose account is enabled."""
    return await con.fetchrow(
        """SELECT s.csrf_token, t.id AS token_id, a.id, a.name, a.roles
             FROM web_sessions s
             JOIN api_tokens t ON t.id = s.token_id AND t.revoked_at IS NULL
             JOIN accounts a ON a.id = s.account_id AND a.disabled_at IS NULL
            WHERE s.id_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now()""", id_hash)


async def revoke_session(con: Conn, id_hash: bytes) -> None:
    await con.execute("UPDATE web_sessions SET revoked_at = now() WHERE id_hash = $1", id_hash)
