"""Account and token rules."""

from __future__ import annotations

import hashlib
import secrets

import asyncpg

from shoplink.auth import policy
from shoplink.auth import repository as repo
from shoplink.auth.models import Account, IssuedToken, Principal, Role
from shoplink.db import Conn
from shoplink.errors import NotFound, ValidationFailed

TOKEN_PREFIX = "slk_"


def hash_token(token: str) -> bytes:
    """What is stored for an API token or a session cookie (both carry 256 random bits, so a
    plain SHA-256 is enough: no password stretching needed)."""
    return hashlib.sha256(token.encode()).digest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class AuthService:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def authenticate(self, token: str) -> Principal | None:
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        async with self._pool.acquire() as con:
            return await repo.principal_for_token(con, hash_token(token))

    async def create_account(self, name: str, roles: list[str],
                             token_label: str = "initial") -> tuple[Account, IssuedToken]:
        clean_roles = sorted({Role(r).value for r in roles})
        if not clean_roles:
            raise ValidationFailed("roles: at least one role is required")
        async with self._pool.acquire() as con, con.transaction():
            account = await repo.insert_account(con, name.strip(), clean_roles)
            token = await self._issue(con, account.id, token_label)
        return account, token

    async def _issue(self, con: Conn, account_id: int, label: str) -> IssuedToken:
        token = new_token()
        row = await repo.insert_token(con, account_id, hash_token(token), label)
        return IssuedToken(id=row["id"], account_id=account_id, token=token,
                           label=row["label"], created_at=row["created_at"])

    async def issue_token(self, principal: Principal, account_id: int, label: str) -> IssuedToken:
        if principal.account_id != account_id:
            policy.require(principal, "accounts.manage")
        async with self._pool.acquire() as con:
            if await repo.get_account(con, account_id) is None:
                raise NotFound("account not found")
            return await self._issue(con, account_id, label)

    async def revoke_token(self, principal: Principal, token_id: int) -> None:
        async with self._pool.acquire() as con:
            owner = await repo.token_owner(con, token_id)
            if owner is None:
                raise NotFound("token not found")
            policy.require_owner(principal, owner, "token")
            await repo.revoke_token(con, token_id)

    async def get_account(self, principal: Principal, account_id: int) -> Account:
        policy.require_owner(principal, account_id, "account")
        async with self._pool.acquire() as con:
            account = await repo.get_account(con, account_id)
        if account is None:
            raise NotFound("account not found")
        return account

    async def list_accounts(self, principal: Principal, limit: int, after_id: int) -> list[Account]:
        policy.require(principal, "accounts.manage")
        async with self._pool.acquire() as con:
            return await repo.list_accounts(con, limit, after_id)

    async def list_tokens(self, principal: Principal, account_id: int) -> list[dict[str, object]]:
        policy.require_owner(principal, account_id, "account")
        async with self._pool.acquire() as con:
            rows = await repo.list_tokens(con, account_id)
        return [{"id": r["id"], "label": r["label"], "created_at": r["created_at"].isoformat(),
                 "revoked": r["revoked_at"] is not None} for r in rows]

    # ---- operator (CLI) actions: whoever runs the CLI already holds the database ----------

    async def create_account_token(self, account_id: int, label: str) -> tuple[Account, IssuedToken]:
        async with self._pool.acquire() as con:
            account = await repo.get_account(con, account_id)
            if account is None:
                raise NotFound("account not found")
            return account, await self._issue(con, account_id, label)

    async def revoke_token_admin(self, token_id: int) -> None:
        async with self._pool.acquire() as con:
            if await repo.token_owner(con, token_id) is None:
                raise NotFound("token not found")
            await repo.revoke_token(con, token_id)

    async def account_names(self, account_ids: list[int]) -> dict[int, str]:
        """Display names of accounts (for callers that already may see those accounts, e.g. a
        plan's seller its creators); unknown ids are left out."""
        if not account_ids:
            return {}
        async with self._pool.acquire() as con:
            return await repo.account_names(con, sorted(set(account_ids)))

    async def find_account_by_name(self, name: str) -> Account | None:
        async with self._pool.acquire() as con:
            return await repo.find_account_by_name(con, name)
