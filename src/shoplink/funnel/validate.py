"""Checking a POST /v1/events body against schemas/events/beacon.schema.json, fast.

The JSON Schema is the contract. A request of 20 events cannot afford a JSON Schema validation
per event on the hot path, so the body is decoded by msgspec straight into the typed structs
below, which state the schema's rules (types, ranges, lengths, the page-view pattern, no other
fields): parsing and checking in one pass of C. Where msgspec refuses a body, the real validator
decides: a body the schema accepts all the same (an integer written `5.0`, which msgspec's
integers refuse) is converted and taken; anything else gets its 422 naming the offending
fields. msgspec never accepts what the schema refuses (tests/unit/test_funnel_validate.py holds
the two to the same answers, case by case and on generated bodies).
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

import msgspec
import orjson
from jsonschema import Draft202012Validator
from msgspec import UNSET, Meta, Struct, UnsetType

from shoplink.errors import BadRequest, ValidationFailed
from shoplink.funnel.models import BEACON_SCHEMA, MAX_CODE_LENGTH, MAX_EVENTS, MAX_PLAYBACK_S
from shoplink.paths import SCHEMAS_DIR

EVENTS_SCHEMAS_DIR = SCHEMAS_DIR / "events"
_MAX_ID = 9007199254740991

Code = Annotated[str, Meta(min_length=1, max_length=MAX_CODE_LENGTH)]
Second = Annotated[float, Meta(ge=0, le=MAX_PLAYBACK_S)]
Id = Annotated[int, Meta(ge=1, le=_MAX_ID)]
# the schema's pattern (msgspec matches with Python's re, where (?!\n) keeps $ from matching
# before a final newline)
PageView = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{8,64}(?!\n)$")]


class Impression(Struct, tag="impression", tag_field="type", forbid_unknown_fields=True,
                 frozen=True):
    code: Code
    t: Second | UnsetType = UNSET


class View(Struct, tag="view", tag_field="type", forbid_unknown_fields=True, frozen=True):
    """Exactly one of `video` and `live` (checked after decoding: `events_of`)."""

    video: Id | UnsetType = UNSET
    live: Id | UnsetType = UNSET
    t: Second | UnsetType = UNSET


class Progress(Struct, tag="progress", tag_field="type", forbid_unknown_fields=True, frozen=True):
    video: Id
    q: Literal[25, 50, 75, 100]
    t: Second | UnsetType = UNSET


Event = Impression | View | Progress


class Beacon(Struct, forbid_unknown_fields=True, frozen=True):
    pv: PageView
    events: Annotated[list[Event], Meta(min_length=1, max_length=MAX_EVENTS)]


_DECODER = msgspec.json.Decoder(Beacon)


@functools.cache
def schema_validator(name: str = BEACON_SCHEMA) -> Draft202012Validator:
    schema = orjson.loads((EVENTS_SCHEMAS_DIR / name).read_bytes())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _views_ok(events: list[Event]) -> bool:
    """Every view names exactly one of a video and a live session."""
    return all((ev.video is UNSET) != (ev.live is UNSET) for ev in events if type(ev) is View)


def decoded(body: bytes) -> Beacon | None:
    """The beacon when msgspec's decoding takes it (valid by the schema); None otherwise."""
    try:
        beacon = _DECODER.decode(body)
    except msgspec.MsgspecError:
        return None
    return beacon if View not in set(map(type, beacon.events)) or _views_ok(beacon.events) else None


def events_of(body: bytes) -> Beacon:
    """The request's page view and events, or BadRequest (not JSON) / ValidationFailed (422)."""
    beacon = decoded(body)
    if beacon is not None:
        return beacon
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not valid JSON", code="invalid_json") from None
    errors = sorted(schema_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    if not errors:  # valid, in a form msgspec's strict decoding refuses (5.0 for an integer)
        beacon = _converted(doc)
        if beacon is not None:
            return beacon
    details = [{"field": "/".join(str(p) for p in e.absolute_path) or "(body)",
                "message": e.message[:200]} for e in errors[:20]]
    if not details:  # the schema accepts it but it cannot be taken: a bug; be safe and say so
        details = [{"field": "(body)", "message": "not a valid events body"}]
    raise ValidationFailed("the events do not match schemas/events/beacon.schema.json",
                           code="invalid_events", details=details)


_INTEGERS = ("video", "live", "q")


def _converted(doc: Any) -> Beacon | None:
    """A schema-valid document as a Beacon (integral floats taken as integers)."""
    events = [{k: int(v) if k in _INTEGERS and type(v) is float else v for k, v in ev.items()}
              for ev in doc["events"]]
    try:
        beacon = msgspec.convert({"pv": doc["pv"], "events": events}, Beacon)
    except msgspec.ValidationError:
        return None
    return beacon if _views_ok(beacon.events) else None
