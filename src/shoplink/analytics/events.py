"""Reading click events (schema_version 1) off the stream, fast, without trusting them.

The full JSON Schema (schemas/click_event.schema.json) is the contract and is checked in the
tests against what producers write. The worker cannot afford a JSON Schema validation per event
at 100k events/s, so it checks exactly what counting relies on: the version, types, enums, and
the fixed widths of `event_id` (26 ASCII letters/digits) and `viewer` (32). A batch is checked
column by column (`parse_batch`); if anything in it is off, its events are parsed one by one
(`parse`) to find which are malformed and why. A malformed event is not counted but moved to the
dead-letter stream with the reason. Unknown extra fields are accepted (new optional fields may
be added within a version).
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any, NamedTuple

import orjson

SCHEMA_VERSION = 1
OUTCOMES = frozenset({"redirected", "fallback", "gone", "not_found"})
CLASSES = frozenset({"human", "bot", "link_preview"})
SURFACES = frozenset({"video", "live", "unknown"})
_ID_NAMES = ("anchor_id", "video_id", "live_session_id", "product_id", "shop_id", "creator_id", "plan_id")
_NONE = type(None)


class Event(NamedTuple):
    event_id: str
    ts_ms: int
    ua_class: str  # human | bot | link_preview
    outcome: str  # redirected | fallback | gone | not_found
    anchor: int | None
    video: int | None
    live: int | None
    product: int | None
    shop: int | None
    creator: int | None
    plan: int | None
    playback_s: float | None
    viewer: str


class Malformed(ValueError):
    """The reason an entry is not a countable event (goes to the dead-letter stream)."""


_new = tuple.__new__
_loads = orjson.loads
# The Event fields, then what is only checked. A missing key raises KeyError: slow path.
_COLUMNS = itemgetter("event_id", "ts_ms", "ua_class", "outcome", *_ID_NAMES, "playback_s", "viewer",
                      "schema_version", "surface", "code", "t_status")
_ALL_SCHEMA_1 = {1}


def _fixed(values: Sequence[str], width: int) -> bool:
    """Every value a str of `width` ASCII letters or digits (checked on their concatenation)."""
    try:
        joined = "".join(values)  # TypeError unless every value is a str
    except TypeError:
        return False
    return set(map(len, values)) == {width} and joined.isascii() and joined.isalnum()


def _ids_ok(values: Sequence[Any]) -> bool:
    # filter(None, ...) drops None (and 0, which is valid anyway); bool is an int subclass but
    # not the type int, so True/False fail the type check
    return set(map(type, values)) <= {int, _NONE} and min(filter(None, values), default=0) >= 0


# An event as the hot path carries it: a tuple whose first 13 items are Event's fields.
Row = tuple[Any, ...]


def parse_batch(payloads: Sequence[bytes]) -> list[Row] | None:
    """All the payloads as events (rows), or None when any of them is not a well-formed event."""
    if not payloads:
        return []
    try:
        rows = list(map(_COLUMNS, map(_loads, payloads)))
    except (ValueError, KeyError, TypeError):
        return None
    cols = list(zip(*rows, strict=True))
    ts, playback = cols[1], cols[11]
    if not (set(cols[13]) == _ALL_SCHEMA_1 and set(map(type, cols[13])) == {int}
            and set(map(type, ts)) == {int} and min(ts) >= 0
            and set(cols[2]) <= CLASSES and set(cols[3]) <= OUTCOMES and set(cols[14]) <= SURFACES
            and _fixed(cols[0], 26) and _fixed(cols[12], 32)
            and all(_ids_ok(cols[i]) for i in range(4, 11))
            and set(map(type, playback)) <= {int, float, _NONE}):
        return None
    present = [p for p in playback if p is not None]
    if present and not (min(present) >= 0 and max(present) < 1e9):
        return None
    return rows


def load_object(raw: bytes | None) -> dict[str, Any]:
    """A stream payload's JSON object, or raise Malformed (missing, not JSON, not an object)."""
    if raw is None:
        raise Malformed("missing_payload")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Malformed("not_json") from None
    if type(doc) is not dict:
        raise Malformed("not_an_object")
    return doc


def parse(raw: bytes | None) -> Event:
    """One stream payload -> Event, or raise Malformed(reason)."""
    doc = load_object(raw)
    version = doc.get("schema_version")
    if version is None:
        raise Malformed("missing_field:schema_version")
    if version != SCHEMA_VERSION or type(version) is not int:
        raise Malformed(f"unsupported_version:{str(version)[:20]}")
    try:
        event_id = doc["event_id"]
        ts_ms = doc["ts_ms"]
        outcome = doc["outcome"]
        ua_class = doc["ua_class"]
        viewer = doc["viewer"]
        surface = doc["surface"]
        doc["code"]
        doc["t_status"]
    except KeyError as exc:
        raise Malformed(f"missing_field:{exc.args[0]}") from None
    if type(event_id) is not str or len(event_id) != 26 or not (event_id.isascii() and event_id.isalnum()):
        raise Malformed("invalid_field:event_id")
    if type(ts_ms) is not int or ts_ms < 0:
        raise Malformed("invalid_field:ts_ms")
    if type(outcome) is not str or outcome not in OUTCOMES:
        raise Malformed("invalid_field:outcome")
    if type(ua_class) is not str or ua_class not in CLASSES:
        raise Malformed("invalid_field:ua_class")
    if type(viewer) is not str or len(viewer) != 32 or not (viewer.isascii() and viewer.isalnum()):
        raise Malformed("invalid_field:viewer")
    if type(surface) is not str or surface not in SURFACES:
        raise Malformed("invalid_field:surface")
    playback = doc.get("playback_s")
    if playback is not None and (type(playback) not in (int, float) or not 0 <= playback < 1e9):
        raise Malformed("invalid_field:playback_s")
    ids = tuple(doc.get(name) for name in _ID_NAMES)
    for name, value in zip(_ID_NAMES, ids, strict=True):
        if value is not None and (type(value) is not int or value < 0):
            raise Malformed(f"invalid_field:{name}")
    return _new(Event, (event_id, ts_ms, ua_class, outcome, *ids, playback, viewer))  # type: ignore[no-any-return]


# shared with funnel_events.py (the player's batches are checked the same way)
fixed_width = _fixed
ids_ok = _ids_ok
