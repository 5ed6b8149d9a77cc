"""The click event (schemas/click_event.schema.json, schema_version 1).

The fields that depend only on the anchor are built once, when the anchor is cached
(`static_fields`), and serialized once too (`static_prefix`: the JSON object still open).
A click serializes only its own ten fields with orjson and appends them (`encode`), so the
event costs one small dict and one concatenation. Keep both in step with the schema: the tests
validate what really lands in Redis against it.
"""

from __future__ import annotations

import math
import re
import zlib
from typing import Any

import orjson

SCHEMA_VERSION = 1
MAX_CODE_LENGTH = 64
_T_VALUE = re.compile(r"^[0-9]{1,9}(?:\.[0-9]{1,6})?$")


def shard_for(anchor_id: int | None, code: str, shards: int) -> int:
    """anchor_id % shards; unknown codes by a stable hash of the code."""
    if anchor_id is not None:
        return anchor_id % shards
    return zlib.crc32(code.encode("utf-8", "surrogateescape")) % shards


def commission_json(rate_bp: int | None, source: str) -> dict[str, Any]:
    return {"rate_bp": rate_bp, "source": source}


def static_fields(*, code: str, outcome: str, surface: str = "unknown", anchor_id: int | None = None,
                  video_id: int | None = None, live_session_id: int | None = None,
                  product_id: int | None = None, shop_id: int | None = None,
                  creator_id: int | None = None, plan_id: int | None = None,
                  commission: dict[str, Any] | None = None) -> dict[str, Any]:
    """The event fields fixed by the anchor (everything but the per-click fields of `encode`)."""
    return {
        "schema_version": SCHEMA_VERSION, "code": code[:MAX_CODE_LENGTH], "outcome": outcome,
        "surface": surface, "anchor_id": anchor_id, "video_id": video_id,
        "live_session_id": live_session_id, "product_id": product_id, "shop_id": shop_id,
        "creator_id": creator_id, "plan_id": plan_id, "commission": commission,
    }


def static_prefix(fields: dict[str, Any]) -> bytes:
    """`fields` as the start of a JSON object, ready for `encode` to complete."""
    return orjson.dumps(fields)[:-1] + b","


def encode(prefix: bytes, event_id: str, ts_ms: int, viewer: str, new_viewer: bool, net: str | None,
           ua_class: str, ua_family: str | None, referrer_host: str | None, playback_s: float | None,
           t_status: str) -> bytes:
    """The whole event as JSON bytes: the anchor's prefix, then this click's fields."""
    return prefix + orjson.dumps({
        "event_id": event_id, "ts_ms": ts_ms, "viewer": viewer, "new_viewer": new_viewer, "net": net,
        "ua_class": ua_class, "ua_family": ua_family, "referrer_host": referrer_host,
        "playback_s": playback_s, "t_status": t_status})[1:]


def video_playback(raw_t: str | None, duration_s: float) -> tuple[float | None, str]:
    """The player's ?t= second: kept when a finite number within the video, otherwise 'invalid'."""
    if raw_t is None:
        return None, "absent"
    if not _T_VALUE.match(raw_t):
        return None, "invalid"
    value = float(raw_t)
    if not math.isfinite(value) or value > duration_s:
        return None, "invalid"
    return round(value, 3), "ok"


def live_playback(started_at_s: float | None, now_s: float) -> tuple[float | None, str]:
    """Seconds since the live started (the player's ?t= does not apply to live)."""
    if started_at_s is None:
        return None, "not_applicable"
    return round(max(0.0, now_s - started_at_s), 3), "not_applicable"
