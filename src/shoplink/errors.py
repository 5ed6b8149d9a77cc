"""Domain errors and the one middleware that turns them into JSON responses.

Every error body has the shape {"error": {"code": ..., "message": ..., "details": ...}}.
`code` is stable and machine readable; `message` is for people.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from shoplink.logs import REQUEST_ID

log = logging.getLogger(__name__)


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
    405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
    415: "unsupported_media_type", 422: "validation_failed", 429: "too_many_requests",
}


def _wants_json(request: web.Request) -> bool:
    path = request.path
    if path.startswith(("/api/", "/v1/", "/healthz", "/readyz")):
        return True
    return "application/json" in request.headers.get("Accept", "")


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DomainError as exc:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return json_error(exc.status, exc.code, exc.message, exc.details, headers)
    except web.HTTPException as exc:
        if exc.status < 400 or not _wants_json(request):
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        message = exc.reason if exc.text is None or exc.text.startswith(f"{exc.status}:") else exc.text
        return json_error(exc.status, code, message, headers=_keep_allow(exc))
    except Exception:
        log.exception("unhandled error", extra={"path": request.path,
                                                "request_id": request.get(REQUEST_ID)})
        return json_error(500, "internal_error", "internal server error")


def _keep_allow(exc: web.HTTPException) -> dict[str, str] | None:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else None
