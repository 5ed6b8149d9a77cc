"""Browser sessions: an API token is exchanged once for an HttpOnly session cookie.

The cookie value is random and only its SHA-256 is stored. A session is tied to the token
that opened it, so revoking the token ends the session too. State-changing requests made with
the cookie must carry the session's CSRF token in `X-CSRF-Token` (pages read it from
`GET /web/session`, which other origins cannot read) and, when the browser sends one, an
`Origin` equal to our own.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

import asyncpg

from shoplink.auth.models import Principal, Role
from shoplink.auth.service import AuthService, hash_token
from shoplink.web import repository as repo

COOKIE_NAME = "sl_session"
SESSION_TTL = timedelta(hours=12)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class WebSession:
    principal: Principal
    csrf_token: str


class SessionService:
    def __init__(self, pool: asyncpg.Pool, auth: AuthService) -> None:
        self._pool = pool
        self._auth = auth

    async def open(self, api_token: str) -> tuple[str, WebSession] | None:
        """(cookie value, session) for a valid token; None otherwise."""
        principal = await self._auth.authenticate(api_token)
        if principal is None:
            return None
        cookie = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        async with self._pool.acquire() as con:
            await repo.insert_session(con, hash_token(cookie), principal.account_id,
                                      principal.token_id, csrf, SESSION_TTL)
        return cookie, WebSession(principal, csrf)

    async def find(self, cookie: str) -> WebSession | None:
        if not cookie or len(cookie) > 100:
            return None
        async with self._pool.acquire() as con:
            row = await repo.find_session(con, hash_token(cookie))
        if row is None:
            return None
        principal = Principal(account_id=row["id"], name=row["name"],
                              roles=frozenset(Role(r) for r in row["roles"]), token_id=row["token_id"])
        return WebSession(principal, row["csrf_token"])

    async def close(self, cookie: str) -> None:
        async with self._pool.acquire() as con:
            await repo.revoke_session(con, hash_token(cookie))


def csrf_ok(session: WebSession, header_value: str | None) -> bool:
    return header_value is not None and hmac.compare_digest(session.csrf_token, header_value)
