"""Reading click events (schema_version 1) off the stream, fast, without trusting them.

The full JSON Schema (schemas/click_event.schema.json) is the contract and is checked in the
tests against what producers write. The worker cannot afford a JSON Schema validation per event
at 100k events/s, so it checks by hand exactly what counting relies on; an event that fails is
not counted but moved to the dead-letter stream with the reason. Unknown extra fields are
accepted (new optional fields may be added within a version).
"""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import orjson

SCHEMA_VERSION = 1
_ULID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_OUTCOMES = {"redirected": "r", "fallback": "f", "gone": "g", "not_found": "n"}
_CLASSES = {"human": "h", "bot": "b", "link_preview": "p"}
_SURFACES = frozenset({"video", "live", "unknown"})


class Event(NamedTuple):
    event_id: str
    ts_ms: int
    cls: str  # h | b | p
    out: str  # r | f | g | n
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


def _opt_id(doc: dict[str, Any], name: str) -> int | None:
    value = doc.get(name)
    if value is None:
        return None
    if type(value) is not int or value < 0:
        raise Malformed(f"invalid_field:{name}")
    return value


def parse(raw: bytes | None) -> Event:
    """One stream payload -> Event, or raise Malformed(reason)."""
    if raw is None:
        raise Malformed("missing_payload")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise Malformed("not_json") from None
    if type(doc) is not dict:
        raise Malformed("not_an_object")
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
    if type(event_id) is not str or not _ULID.fullmatch(event_id):
        raise Malformed("invalid_field:event_id")
    if type(ts_ms) is not int or ts_ms < 0:
        raise Malformed("invalid_field:ts_ms")
    out = _OUTCOMES.get(outcome) if type(outcome) is str else None
    if out is None:
        raise Malformed("invalid_field:outcome")
    cls = _CLASSES.get(ua_class) if type(ua_class) is str else None
    if cls is None:
        raise Malformed("invalid_field:ua_class")
    if type(viewer) is not str or not _HEX32.fullmatch(viewer):
        raise Malformed("invalid_field:viewer")
    if surface not in _SURFACES:
        raise Malformed("invalid_field:surface")
    playback = doc.get("playback_s")
    if playback is not None and (type(playback) not in (int, float) or not 0 <= playback < 1e9):
        raise Malformed("invalid_field:playback_s")
    return Event(event_id, ts_ms, cls, out, _opt_id(doc, "anchor_id"), _opt_id(doc, "video_id"),
                 _opt_id(doc, "live_session_id"), _opt_id(doc, "product_id"),
                 _opt_id(doc, "shop_id"), _opt_id(doc, "creator_id"), _opt_id(doc, "plan_id"),
                 playback, viewer)
