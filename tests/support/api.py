"""A thin client for the real HTTP API of a running test server."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from yarl import URL

# The test app's SHOPLINK_METRICS_TOKEN (conftest's `settings`): /metrics on the main port needs it.
METRICS_TOKEN = "test-metrics-token-0123456789"
METRICS_AUTH = {"Authorization": f"Bearer {METRICS_TOKEN}"}


@dataclass
class Reply:
    status: int
    body: Any
    headers: Any

    @property
    def error_code(self) -> str | None:
        if isinstance(self.body, dict) and isinstance(self.body.get("error"), dict):
            code: str = self.body["error"]["code"]
            return code
        return None


class Api:
    """Calls one server as one account (or anonymously when token is None)."""

    def __init__(self, session: ClientSession, base_url: str, token: str | None,
                 account_id: int | None = None) -> None:
        self.session = session
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.account_id = account_id

    @classmethod
    def of(cls, who: Api, base_url: str) -> Api:
        """The same account (and HTTP session) on another server."""
        return cls(who.session, base_url, who.token, who.account_id)

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        headers.update(extra or {})
        return headers

    async def request(self, method: str, path: str | URL, *, json: Any = None, data: Any = None,
                      headers: dict[str, str] | None = None, **kwargs: Any) -> Reply:
        """`path` on this server; or a whole URL, sent as it is (`URL(..., encoded=True)`)."""
        url = path if isinstance(path, URL) else self.base_url + path
        async with self.session.request(method, url, json=json, data=data,
                                        headers=self._headers(headers), allow_redirects=False,
                                        **kwargs) as resp:
            raw = await resp.read()
            body: Any = raw
            if resp.content_type == "application/json" and raw:
                body = await resp.json()
            elif resp.content_type.startswith("text/"):
                body = raw.decode()
            return Reply(resp.status, body, resp.headers)

    async def get(self, path: str | URL, **kw: Any) -> Reply:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> Reply:
        return await self.request("POST", path, json=json, **kw)

    async def patch(self, path: str, json: Any = None, **kw: Any) -> Reply:
        return await self.request("PATCH", path, json=json, **kw)

    async def delete(self, path: str | URL, **kw: Any) -> Reply:
        return await self.request("DELETE", path, **kw)


class Account(Api):
    """An Api signed in as a known account (what `make_account` gives)."""

    token: str
    account_id: int

    def __init__(self, session: ClientSession, base_url: str, token: str, account_id: int) -> None:
        super().__init__(session, base_url, token, account_id)


AccountFactory = Callable[..., Awaitable[Account]]
"""The `make_account` fixture: `await make_account("seller", name=...)`."""

ServerFactory = Callable[..., Awaitable[TestServer]]
"""The `start_server` fixture: `await start_server(**setting_overrides)`."""
