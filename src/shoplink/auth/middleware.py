"""Bearer-token authentication for every /api/v1 route."""

from __future__ import annotations

from aiohttp import web

from shoplink.errors import Handler, Unauthorized
from shoplink.keys import AUTH, PRINCIPAL

API_PREFIX = "/api/v1/"


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    # A session cookie (web pages) may already have set the principal.
    if request.path.startswith(API_PREFIX) and PRINCIPAL not in request:
        token = _bearer(request)
        if token is None:
            raise Unauthorized("missing bearer token: send Authorization: Bearer <token>")
        found = await request.app[AUTH].authenticate(token)
        if found is None:
            raise Unauthorized("invalid or revoked token", code="invalid_token")
        request[PRINCIPAL] = found
    return await handler(request)
