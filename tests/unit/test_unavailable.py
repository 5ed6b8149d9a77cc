"""Which exceptions mean "a backing service is unavailable" (503 + Retry-After) and which stay 500s,
and the throttled log that reports a flood of them without drowning the log."""

from __future__ import annotations

import errno
import logging

import asyncpg
import pytest
import redis.exceptions

from shoplink.errors import is_unavailable
from shoplink.logs import Throttled


@pytest.mark.parametrize("exc", [
    ConnectionRefusedError(errno.ECONNREFUSED, "refused"),
    OSError(errno.EHOSTUNREACH, "no route to host"),
    OSError("Multiple exceptions: [Errno 111] ..., [Errno 99] ..."),  # asyncpg, several addresses
    TimeoutError(),  # connect, pool acquire, statement
    asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    asyncpg.CannotConnectNowError("the database system is starting up"),
    asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
    asyncpg.TooManyConnectionsError("too many clients"),
    redis.exceptions.ConnectionError("Error 111 connecting"),
    redis.exceptions.TimeoutError("Timeout reading from socket"),
])
def test_outages_are_unavailable(exc: BaseException) -> None:
    assert is_unavailable(exc)


@pytest.mark.parametrize("exc", [
    FileNotFoundError(errno.ENOENT, "missing"),
    PermissionError(errno.EACCES, "denied"),
    asyncpg.UniqueViolationError("duplicate key"),
    asyncpg.UndefinedTableError("relation does not exist"),
    redis.exceptions.ResponseError("WRONGTYPE"),
    ValueError("bug"),
])
def test_bugs_and_bad_requests_are_not(exc: BaseException) -> None:
    assert not is_unavailable(exc)


def test_throttled_logs_the_first_at_once_then_sums_up(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("shoplink.test.throttled")
    throttled = Throttled(logger, logging.ERROR, "things dropped", interval_s=3600)
    with caplog.at_level(logging.ERROR, logger=logger.name):
        throttled(3, reason="x")
        for _ in range(1000):
            throttled(1, reason="x")
        assert [(r.count, r.total) for r in caplog.records] == [(3, 3)]  # type: ignore[attr-defined]
        throttled.flush()
        throttled.flush()  # nothing new: no line
    assert [(r.count, r.total) for r in caplog.records] == [(3, 3), (1000, 1003)]  # type: ignore[attr-defined]
    assert all(r.levelno == logging.ERROR and r.reason == "x" for r in caplog.records)  # type: ignore[attr-defined]
