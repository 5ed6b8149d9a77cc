"""Public anchor codes: short, URL-safe, random (never sequential), unique, never reused.

Uniqueness is enforced by the database (anchors.code is UNIQUE and anchors are archived,
never deleted); `with_new_code` is the one place that allocates a code and retries on the rare
collision.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from shoplink.db import Conn
from shoplink.errors import Conflict

log = logging.getLogger(__name__)

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"  # no 0/O, 1/l/I
CODE_LENGTH = 8  # 57**8 ≈ 1.1e14 codes: unguessable at any realistic anchor count
MAX_ATTEMPTS = 5

T = TypeVar("T")


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


async def with_new_code(con: Conn, insert: Callable[[str], Awaitable[T]]) -> T:
    """`insert(code)` with a fresh code, retried with another when that one is taken.

    Each attempt runs in a savepoint (a transaction of its own when `con` is in none), so a
    collision undoes only that insert and the caller's transaction, and the locks it holds,
    carry on. Conflict `code_exhausted` after MAX_ATTEMPTS collisions."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            async with con.transaction():
                return await insert(new_code())
        except asyncpg.UniqueViolationError:
            log.warning("anchor code collision", extra={"attempt": attempt})
    raise Conflict("could not allocate an anchor code; try again", code="code_exhausted")
