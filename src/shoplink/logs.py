"""Structured logs: one JSON object per line, with the request id when there is one."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

# The request id travels on the request for access logs and error logs.
REQUEST_ID = web.RequestKey("request_id", str)

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        entry.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


class AccessLogger(AbstractAccessLogger):
    def log(self, request: web.BaseRequest, response: web.StreamResponse, elapsed: float) -> None:
        self.logger.info("request", extra={
            "request_id": request.get(REQUEST_ID),
            "method": request.method, "path": request.path, "status": response.status,
            "ms": round(elapsed * 1000, 2), "ts_start": round(time.time() - elapsed, 3)})


class Throttled:
    """Log a recurring problem loudly but at most once per `interval_s`: the first occurrence at
    once, then one line per interval carrying how many occurrences it stands for (`count`, and the
    running `total`), so a flood of failures neither drowns the log nor goes unreported.

    `flush()` writes what is still unreported (call it when the problem ends, or at shutdown)."""

    def __init__(self, logger: logging.Logger, level: int, message: str, *, interval_s: float = 10.0) -> None:
        self._logger = logger
        self._level = level
        self._message = message
        self._interval = interval_s
        self._last = -interval_s
        self._unreported = 0
        self._extra: dict[str, Any] = {}
        self.total = 0

    def __call__(self, count: int = 1, **extra: Any) -> None:
        self.total += count
        self._unreported += count
        self._extra = extra
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            self.flush()

    def flush(self) -> None:
        if self._unreported:
            self._logger.log(self._level, self._message, extra={
                **self._extra, "count": self._unreported, "total": self.total})
            self._unreported = 0
