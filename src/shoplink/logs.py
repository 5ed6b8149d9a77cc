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
