"""The click event (schemas/click_event.schema.json, schema_version 1) as a dict.

The fields that depend only on the anchor are built once, when the anchor is cached
(`static_fields`); a click copies that dict and sets the few per-click fields (`click_event`),
then the writer serializes it with orjson. Keep both in step with the schema: the tests
validate what really lands in Redis against it.
"""

from __future__ import annotations

import math
import re
import zlib
from typing import Any

SCHEMA_VERSION = 1
MAX_CODE_LENGTH = 64
_T_VALUE = re.compile(r"^[0-9]{1,9}(?:\.[0-9]{1,6})?$")


def stream_key(shard: int) -> str:
    """`shoplink:clicks:{n}`: the braces are a Redis Cluster hash tag."""
    return f"shoplink:clicks:{{{shard}}}"


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
    return {
        "schema_version": SCHEMA_VERSION, "event_id": "", "ts_ms": 0,
        "code": code[:MAX_CODE_LENGTH], "outcome": outcome, "surface": surface,
        "anchor_id": anchor_id, "video_id": video_id, "live_session_id": live_session_id,
        "playback_s": None, "t_status": "not_applicable", "product_id": product_id,
        "shop_id": shop_id, "creator_id": creator_id, "plan_id": plan_id, "commission": commission,
    }


def click_event(base: dict[str, Any], *, event_id: str, ts_ms: int, viewer: str, new_viewer: bool,
                net: str | None, ua_class: str, ua_family: str | None, referrer_host: str | None,
                playback_s: float | None, t_status: str) -> dict[str, Any]:
    event = base.copy()
    event["event_id"] = event_id
    event["ts_ms"] = ts_ms
    event["viewer"] = viewer
    event["new_viewer"] = new_viewer
    event["net"] = net
    event["ua_class"] = ua_class
    event["ua_family"] = ua_family
    event["referrer_host"] = referrer_host
    event["playback_s"] = playback_s
    event["t_status"] = t_status
    return event


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
