"""Checking a POST /v1/events body against schemas/events/beacon.schema.json, fast.

The JSON Schema is the contract. A request of 20 events cannot afford a JSON Schema validation
per event on the hot path, so `events_of` checks exactly what the schema says with plain type
and range tests; only when that finds something wrong does the real validator run, to say what
and where (422 with the offending fields). tests/unit/test_funnel_validate.py holds the two to
the same answers.
"""

from __future__ import annotations

import functools
import re
from functools import partial
from itertools import compress, repeat
from operator import eq, itemgetter, ne
from typing import Any, NamedTuple

import orjson
from jsonschema import Draft202012Validator

from shoplink.errors import BadRequest, ValidationFailed
from shoplink.funnel.models import BEACON_SCHEMA, MAX_CODE_LENGTH, MAX_EVENTS, MAX_PLAYBACK_S
from shoplink.paths import SCHEMAS_DIR

EVENTS_SCHEMAS_DIR = SCHEMAS_DIR / "events"
_PV = re.compile(r"[A-Za-z0-9_-]{8,64}")
_MAX_ID = 9007199254740991
_KEYS = {"impression": frozenset({"type", "code", "t"}),
         "view": frozenset({"type", "video", "live", "t"}),
         "progress": frozenset({"type", "video", "t", "q"})}
_QUARTILES = frozenset({25, 50, 75, 100})
_IMPRESSION = _KEYS["impression"]


class Beacon(NamedTuple):
    pv: str
    events: list[dict[str, Any]]


@functools.cache
def schema_validator(name: str = BEACON_SCHEMA) -> Draft202012Validator:
    schema = orjson.loads((EVENTS_SCHEMAS_DIR / name).read_bytes())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _int_of(value: Any, low: int, high: int) -> int | None:
    """An integer in [low, high] (JSON Schema's integer: 5.0 is one too), else None."""
    if type(value) is int:
        return value if low <= value <= high else None
    if type(value) is float and value.is_integer() and low <= value <= high:
        return int(value)
    return None


_NUMBER = (int, float)
_NUMBER_SET = frozenset(_NUMBER)


def _event(ev: Any) -> dict[str, Any] | None:
    """The event when it is valid (itself, or a copy with integers as int); else None.
    The common case (an impression) costs a handful of C calls."""
    if type(ev) is not dict:
        return None
    kind = ev.get("type")
    if kind == "impression":
        code = ev.get("code")
        if not (type(code) is str and 0 < len(code) <= MAX_CODE_LENGTH and _IMPRESSION.issuperset(ev)):
            return None
        t = ev.get("t", 0)
        return ev if type(t) in _NUMBER and 0 <= t <= MAX_PLAYBACK_S else None
    allowed = _KEYS.get(kind) if type(kind) is str else None
    if allowed is None or not allowed.issuperset(ev):
        return None
    out: dict[str, Any] = {"type": kind}
    if "t" in ev:
        t = ev["t"]
        if not (type(t) in _NUMBER and 0 <= t <= MAX_PLAYBACK_S):
            return None
        out["t"] = t
    if kind == "view" and ("video" in ev) == ("live" in ev):
        return None
    name = "live" if "live" in ev else "video"
    if name not in ev:
        return None
    surface = _int_of(ev[name], 1, _MAX_ID)
    if surface is None:
        return None
    out[name] = surface
    if kind == "progress":
        q = _int_of(ev.get("q"), 25, 100)
        if q not in _QUARTILES:
            return None
        out["q"] = q
    return out


def checked(doc: Any) -> Beacon | None:
    """The beacon, normalised, exactly when `doc` is valid against the beacon schema; else None."""
    if type(doc) is not dict or len(doc) != 2:
        return None
    pv, events = doc.get("pv"), doc.get("events")
    if not (type(pv) is str and _PV.fullmatch(pv) is not None and type(events) is list
            and 1 <= len(events) <= MAX_EVENTS):
        return None
    if set(map(type, events)) != {dict}:
        return None
    kinds = list(map(dict.get, events, repeat("type")))  # dict.get itself: no Python call per event
    if set(map(type, kinds)) != {str}:  # missing, or not even hashable ({"type": [1]})
        return None
    if set(kinds) == {"impression"}:
        return Beacon(pv, events) if _all_impressions_ok(events) else None
    # impressions by columns, the others (views, quartiles: a few per page view) one by one
    impressions = list(compress(events, map(_IS_IMPRESSION, kinds)))
    if impressions and not _all_impressions_ok(impressions):
        return None
    others = list(map(_event, compress(events, map(_IS_OTHER, kinds))))
    return None if None in others else Beacon(pv, [*impressions, *others])  # type: ignore[list-item]


_IS_IMPRESSION = partial(eq, "impression")
_IS_OTHER = partial(ne, "impression")
_CODE = itemgetter("code")


def _all_impressions_ok(events: list[dict[str, Any]]) -> bool:
    """Events of type "impression" (dicts, as `checked` found them) checked column by column in
    C loops (no Python call per event): True when every one is a valid impression."""
    try:
        codes = list(map(_CODE, events))
    except KeyError:
        return False
    ts = list(map(dict.get, events, repeat("t"), repeat(0)))
    return (all(map(_IMPRESSION.issuperset, events)) and set(map(type, codes)) == {str}
            and min(map(len, codes)) > 0 and max(map(len, codes)) <= MAX_CODE_LENGTH
            and set(map(type, ts)) <= _NUMBER_SET and min(ts) >= 0 and max(ts) <= MAX_PLAYBACK_S)


def events_of(body: bytes) -> Beacon:
    """The request's page view and events, or BadRequest (not JSON) / ValidationFailed (422)."""
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("the body is not valid JSON", code="invalid_json") from None
    beacon = checked(doc)
    if beacon is not None:
        return beacon
    errors = sorted(schema_validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    details = [{"field": "/".join(str(p) for p in e.absolute_path) or "(body)",
                "message": e.message[:200]} for e in errors[:20]]
    if not details:  # the schema accepts it but the fast check did not: a bug; be safe and say so
        details = [{"field": "(body)", "message": "not a valid events body"}]
    raise ValidationFailed("the events do not match schemas/events/beacon.schema.json",
                           code="invalid_events", details=details)
