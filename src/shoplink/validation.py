"""Request bodies: size limits, JSON parsing, and JSON Schema validation.

Schemas live in `schemas/requests/<name>.schema.json` (Draft 2020-12). A body that is not
JSON is a 400; a body that is JSON but breaks its schema is a 422 whose details name each
offending field.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import orjson
from aiohttp import web
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError

from shoplink.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from shoplink.paths import SCHEMAS_DIR

REQUEST_SCHEMAS_DIR = SCHEMAS_DIR / "requests"


@functools.cache
def validator(name: str) -> Draft202012Validator:
    path = REQUEST_SCHEMAS_DIR / f"{name}.schema.json"
    schema = orjson.loads(path.read_bytes())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _field_of(error: SchemaError) -> str:
    path = [str(p) for p in error.absolute_path]
    if error.validator == "required" and isinstance(error.message, str):
        missing = error.message.split("'")[1] if "'" in error.message else ""
        path.append(missing)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        schema = error.schema if isinstance(error.schema, dict) else {}
        allowed = set(schema.get("properties", {}))
        extra = sorted(k for k in error.instance if k not in allowed)
        if extra:
            path.append(extra[0])
    return ".".join(path) or "(body)"


def _message_of(error: SchemaError) -> str:
    if error.validator == "additionalProperties":
        return "unknown field"
    if error.validator == "required":
        return "is required"
    return str(error.message)


def _specific(error: SchemaError) -> SchemaError:
    """For `anyOf` / `oneOf` (a value that may be null, a name or an object): the failure inside the
    alternative the value was meant for (`position.x: 2 is greater than 1`), not "is not valid"."""
    while error.validator in ("anyOf", "oneOf") and error.context:
        # the alternatives of the value's own type failed for a reason: the deepest one says it
        meant = [e for e in error.context if e.validator != "type"] or list(error.context)
        error = max(meant, key=lambda e: len(e.absolute_path))
    return error


def validate(instance: Any, schema_name: str) -> None:
    errors = sorted((_specific(e) for e in validator(schema_name).iter_errors(instance)),
                    key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        details = [{"field": _field_of(e), "message": _message_of(e), "code": str(e.validator)}
                   for e in errors[:20]]
        first = details[0]
        raise ValidationFailed(f"{first['field']}: {first['message']}", details=details)
    _reject_huge_floats(instance)


def _reject_huge_floats(value: Any) -> None:
    """JSON Schema's "integer" accepts an integral float such as 1e38 (orjson reads integers past
    2**64 as floats): once the schema passed, no number may exceed PostgreSQL's bigint."""
    if isinstance(value, float) and not _INT64_MIN <= value <= _INT64_MAX:
        raise BadRequest("numbers must be within ±9223372036854775807", code="invalid_number")
    if isinstance(value, dict):
        for item in value.values():
            _reject_huge_floats(item)
    elif isinstance(value, list):
        for item in value:
            _reject_huge_floats(item)


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
NUL_MESSAGE = "text must not contain the NUL character (U+0000)"


def _reject_unstorable(value: Any) -> None:
    """Values PostgreSQL cannot store: non-finite numbers, integers beyond bigint, NUL in text (keys too)."""
    # orjson already refuses NaN/Infinity literals; huge numbers parse as floats that overflow to inf.
    if isinstance(value, float) and not math.isfinite(value):
        raise BadRequest("numbers must be finite", code="invalid_number")
    if isinstance(value, int) and not _INT64_MIN <= value <= _INT64_MAX:  # orjson reads up to 2**64 - 1
        raise BadRequest("integers must fit in 64 bits (ids are at most 9223372036854775807)",
                         code="invalid_number")
    if isinstance(value, str):
        if "\x00" in value:
            raise BadRequest(NUL_MESSAGE, code="invalid_character")
    elif isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                raise BadRequest(NUL_MESSAGE, code="invalid_character")
            _reject_unstorable(item)
    elif isinstance(value, list):
        for item in value:
            _reject_unstorable(item)


def reject_nul(text: str) -> str:
    """`text` unchanged, or a 400 when it holds a NUL character (PostgreSQL text cannot)."""
    if "\x00" in text:
        raise BadRequest(NUL_MESSAGE, code="invalid_character")
    return text


async def read_body(request: web.Request, limit: int) -> bytes:
    """Read the whole body, refusing early (413) when it is larger than `limit`."""
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"request body is larger than {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"request body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    if not raw.strip():
        raise BadRequest("request body is empty; a JSON document is expected", code="empty_body")
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"request body is not valid JSON: {exc}", code="malformed_json") from None
    _reject_unstorable(value)
    return value


async def read_json(request: web.Request, schema_name: str, limit: int) -> Any:
    """Parse and validate a JSON request body."""
    content_type = request.headers.get("Content-Type", "")
    if content_type and request.content_type != "application/json":
        raise UnsupportedMediaType("Content-Type must be application/json")
    body = parse_json(await read_body(request, limit))
    validate(body, schema_name)
    return body
