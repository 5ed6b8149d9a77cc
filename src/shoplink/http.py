"""Small helpers shared by every domain's views: JSON responses, ids, paging, the principal."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from shoplink.auth.models import Principal
from shoplink.errors import BadRequest, Unauthorized
from shoplink.keys import PRINCIPAL

MAX_ID = 2**63 - 1


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, headers=headers,
                        content_type="application/json")


def ascii_digits(raw: str) -> bool:
    """Only 0-9, at most 19 of them: `str.isdigit` alone also accepts digits `int()` refuses
    (superscripts like '³'), and `int()` refuses strings of more than 4300 digits."""
    return 0 < len(raw) <= 19 and raw.isascii() and raw.isdigit()


def parse_id(raw: str) -> int | None:
    """A positive id (1 .. 2**63-1, PostgreSQL's bigint) written in decimal, else None."""
    return int(raw) if ascii_digits(raw) and 0 < int(raw) <= MAX_ID else None


def path_id(request: web.Request, name: str) -> int:
    """A positive integer id from the URL path; 400 with a clear message otherwise."""
    raw = request.match_info[name]
    value = parse_id(raw)
    if value is None:
        raise BadRequest(f"{name} must be a positive integer, got {raw[:40]!r}", code="invalid_id")
    return value


def query_int(request: web.Request, name: str, default: int, minimum: int, maximum: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"query parameter {name} must be an integer", code="invalid_query") from None
    if not minimum <= value <= maximum:
        raise BadRequest(f"query parameter {name} must be between {minimum} and {maximum}",
                         code="invalid_query")
    return value


def page_params(request: web.Request) -> tuple[int, int]:
    """(limit, after_id) keyset paging: ?limit=50&after=<last id seen>."""
    return (query_int(request, "limit", 50, 1, 500), query_int(request, "after", 0, 0, MAX_ID))


def principal(request: web.Request) -> Principal:
    value: Principal | None = request.get(PRINCIPAL)
    if value is None:
        raise Unauthorized("authentication required")
    return value


def page(items: list[Any], limit: int) -> dict[str, Any]:
    next_after = items[-1]["id"] if len(items) == limit and items else None
    return {"items": items, "next_after": next_after}
