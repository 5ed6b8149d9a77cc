"""Structured logs: one JSON object per line, with the request id when there is one, and never
a client address (not even in aiohttp's or asyncio's own lines: `keep_addresses_out`)."""

from __future__ import annotations

import ipaddress
import logging
import re
import sys
import time
from typing import Any

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.http_exceptions import HttpProcessingError

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
        elif record.exc_text:  # already formatted (and cleaned: ClientAddressFilter)
            entry["exc"] = record.exc_text
        return orjson.dumps(entry, default=str).decode()


def configure(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    keep_addresses_out()


# Runs of the characters of IPv4 and IPv6 literals; each is checked with `ipaddress`.
_ADDRESS_LIKE = re.compile(r"(?<![\w.:])[0-9A-Fa-f.:]{2,}(?![\w.:])")
ADDRESS_PLACEHOLDER = "<address>"
_REASON_CHARS = 200


def _is_address(text: str) -> bool:
    for candidate in (text, text.rsplit(":", 1)[0] if text.count(":") == 1 else ""):
        try:
            ipaddress.ip_address(candidate)
        except ValueError:
            continue
        return True
    return False


def scrub_addresses(text: str) -> str:
    """`text` with every IPv4 or IPv6 address (with a :port, for IPv4) replaced."""
    if ":" not in text and "." not in text:
        return text
    return _ADDRESS_LIKE.sub(lambda m: ADDRESS_PLACEHOLDER if _is_address(m[0]) else m[0], text)


class ClientAddressFilter(logging.Filter):
    """For libraries' loggers, which may name the peer (aiohttp logs "Error handling request from
    <address>" with a traceback for a request it cannot parse, e.g. a header over 8,190 bytes):
    addresses are removed from the message and the traceback. A request aiohttp could not parse is
    the client's fault: one WARNING line naming the error, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            reason = scrub_addresses(str(exc.message).strip().splitlines()[0] if exc.message else "")
            record.msg = "malformed HTTP request refused (%d %s): %s"
            record.args = (exc.code, type(exc).__name__, reason[:_REASON_CHARS])
            record.exc_info, record.exc_text = None, None
            if record.levelno > logging.WARNING:
                record.levelno, record.levelname = logging.WARNING, "WARNING"
            return True
        message = record.getMessage()
        clean = scrub_addresses(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info:
            record.exc_text = scrub_addresses(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = scrub_addresses(record.exc_text)
        return True


# Loggers of the libraries that see connections (shoplink's own never log an address).
_LIBRARY_LOGGERS = ("aiohttp.access", "aiohttp.client", "aiohttp.internal", "aiohttp.server",
                    "aiohttp.web", "aiohttp.websocket", "asyncio")
_ADDRESS_FILTER = ClientAddressFilter()


def keep_addresses_out() -> None:
    """Install `ClientAddressFilter` on the libraries' loggers (idempotent)."""
    for name in _LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if _ADDRESS_FILTER not in logger.filters:
            logger.addFilter(_ADDRESS_FILTER)


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
