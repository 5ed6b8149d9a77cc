"""Domain errors and the one middleware that turns them into JSON responses.

Every error body has the shape {"error": {"code": ..., "message": ..., "details": ...}}.
`code` is stable and machine readable; `message` is for people.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson
import redis.exceptions
from aiohttp import web

from shoplink.logs import REQUEST_ID, Throttled

log = logging.getLogger(__name__)

RETRY_AFTER_S = 5  # what a 503 asks clients to wait before trying again


class DomainError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class BadRequest(DomainError):
    status = 400
    code = "bad_request"


class Unauthorized(DomainError):
    status = 401
    code = "unauthorized"


class Forbidden(DomainError):
    status = 403
    code = "forbidden"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class RequestTimeout(DomainError):
    status = 408
    code = "request_timeout"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class Gone(DomainError):
    status = 410
    code = "gone"


class PayloadTooLarge(DomainError):
    status = 413
    code = "payload_too_large"


class UnsupportedMediaType(DomainError):
    status = 415
    code = "unsupported_media_type"


class ValidationFailed(DomainError):
    status = 422
    code = "validation_failed"


class ServiceUnavailable(DomainError):
    status = 503
    code = "unavailable"


# OSErrors about the local file system are bugs or misconfiguration (500), not an outage.
_LOCAL_OS_ERRORS = (FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError,
                    NotADirectoryError)


def is_unavailable(exc: BaseException) -> bool:
    """True when `exc` means a backing service (PostgreSQL, Redis) cannot be reached or is not
    serving right now (stopped, restarting, unreachable, out of connections, too slow), rather than
    a fault in the request or the code: the answer is 503, and trying again later will work."""
    if isinstance(exc, OSError):  # refused, reset, unreachable; TimeoutError (connect, acquire, statement)
        return not isinstance(exc, _LOCAL_OS_ERRORS)
    return isinstance(exc, (
        asyncpg.PostgresConnectionError,  # class 08: connection closed mid-query, cannot connect
        asyncpg.CannotConnectNowError,  # 57P03: starting up or shutting down
        asyncpg.AdminShutdownError, asyncpg.CrashShutdownError,  # 57P01, 57P02: stopped under us
        asyncpg.TooManyConnectionsError,  # 53300
        redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
    ))


def field_error(field: str, message: str, code: str = "invalid") -> ValidationFailed:
    """A 422 about one field, with the field named in `details`."""
    return ValidationFailed(f"{field}: {message}", details=[{"field": field, "message": message,
                                                              "code": code}])


def error_body(code: str, message: str, details: Any = None) -> bytes:
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return orjson.dumps({"error": body})


def json_error(status: int, code: str, message: str, details: Any = None,
               headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=error_body(code, message, details),
                        content_type="application/json", headers=headers)


_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 408: "request_timeout", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "validation_failed", 429: "too_many_requests",
}


def _wants_json(request: web.Request) -> bool:
    path = request.path
    if path.startswith(("/api/", "/v1/", "/healthz", "/readyz")):
        return True
    return "application/json" in request.headers.get("Accept", "")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


_unavailable_log = Throttled(log, logging.ERROR, "backing service unavailable: answering 503")


def unavailable_response() -> web.Response:
    return json_error(503, "unavailable", "a backing service is unavailable, try again shortly",
                      headers={"Retry-After": str(RETRY_AFTER_S)})


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DomainError as exc:
        headers = None
        if exc.status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        elif exc.status == 503:
            headers = {"Retry-After": str(RETRY_AFTER_S)}
        return json_error(exc.status, exc.code, exc.message, exc.details, headers)
    except web.HTTPException as exc:
        if exc.status < 400 or not _wants_json(request):
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        message = exc.reason if exc.text is None or exc.text.startswith(f"{exc.status}:") else exc.text
        return json_error(exc.status, code, message, headers=_keep_allow(exc))
    except Exception as exc:
        if is_unavailable(exc):
            _unavailable_log(path=request.path, error=repr(exc))
            return unavailable_response()
        log.exception("unhandled error", extra={"path": request.path,
                                                "request_id": request.get(REQUEST_ID)})
        return json_error(500, "internal_error", "internal server error")


def _keep_allow(exc: web.HTTPException) -> dict[str, str] | None:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else None
