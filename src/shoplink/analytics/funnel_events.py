"""Reading the player's event batches (schemas/events/stream_batch.schema.json) off the event
streams, fast, without trusting them: the same approach as events.py for clicks.

A stream entry is one batch: the accepted events of one POST /v1/events for one shard. Its
`batch_id` is the idempotency key (what the dedup sets record), and every event of it is counted
in the minute of its `ts_ms`. A batch is parsed into a `Batch` row:

    (batch_id, ts_ms, ua_class, viewer, events)

where each event is `(type, quartile, anchor, video, live, product, shop, creator, plan,
playback_s)`, (type, quartile) one of MEASURE's keys: impression, view, or q25/q50/q75/q100 (a
progress event's quartile). The rows are the itemgetter tuples themselves: no per-event copy.
`parse_batches` checks a whole read column by column; when anything is off, `parse_one` finds
which entries are malformed and why (they go to the dead-letter stream).
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import orjson

from shoplink.analytics.events import CLASSES, Malformed, load_object
from shoplink.analytics.events import fixed_width as _fixed
from shoplink.analytics.events import ids_ok as _ids_ok

SCHEMA_VERSION = 1
MAX_EVENTS = 100
MEASURE = {("impression", None): "impression", ("view", None): "view", ("progress", 25): "q25",
           ("progress", 50): "q50", ("progress", 75): "q75", ("progress", 100): "q100"}
_MEASURE_KEYS = frozenset(MEASURE)
_ID_NAMES = ("anchor_id", "video_id", "live_session_id", "product_id", "shop_id", "creator_id", "plan_id")
_HEAD = itemgetter("batch_id", "ts_ms", "ua_class", "viewer", "events", "schema_version")
_EVENT = itemgetter("type", "quartile", *_ID_NAMES, "playback_s")
_NONE = type(None)
_loads = orjson.loads

# (batch_id, ts_ms, ua_class, viewer, events): see the module's docstring
Batch = tuple[Any, ...]


def _events(raw: Sequence[Any]) -> list[tuple[Any, ...]] | None:
    """The events of one or more batches as (type, quartile, 7 ids, playback_s), or None if
    malformed."""
    try:
        cols = list(map(_EVENT, raw))
    except (KeyError, TypeError):
        return None
    if not cols:
        return []
    columns = list(zip(*cols, strict=True))
    playback = columns[9]
    try:
        if not set(zip(columns[0], columns[1], strict=True)) <= _MEASURE_KEYS:
            return None
    except TypeError:  # an unhashable type or quartile
        return None
    if not (all(_ids_ok(columns[i]) for i in range(2, 9)) and set(map(type, playback)) <= {int, float, _NONE}):
        return None
    present = [p for p in playback if p is not None]
    if present and not (min(present) >= 0 and max(present) < 1e9):
        return None
    return cols


def parse_batches(payloads: Sequence[bytes]) -> list[Batch] | None:
    """Every payload as a Batch, or None when any of them is not a well-formed batch."""
    if not payloads:
        return []
    try:
        heads = list(map(_HEAD, map(_loads, payloads)))
    except (ValueError, KeyError, TypeError):
        return None
    cols = list(zip(*heads, strict=True))
    ts, lists = cols[1], cols[4]
    if not (set(cols[5]) == {SCHEMA_VERSION} and set(map(type, cols[5])) == {int}
            and set(map(type, ts)) == {int} and min(ts) >= 0 and set(cols[2]) <= CLASSES
            and _fixed(cols[0], 26) and _fixed(cols[3], 32)
            and set(map(type, lists)) == {list} and min(map(len, lists)) >= 1
            and max(map(len, lists)) <= MAX_EVENTS):
        return None
    flat = _events([ev for events in lists for ev in events])
    if flat is None:
        return None
    out: list[Batch] = []
    pos = 0
    for h in heads:
        n = len(h[4])
        out.append((h[0], h[1], h[2], h[3], flat[pos:pos + n]))
        pos += n
    return out


def parse_one(raw: bytes | None) -> Batch:
    """One stream payload -> Batch, or raise Malformed(reason)."""
    doc = load_object(raw)
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION or type(version) is not int:
        raise Malformed(f"unsupported_version:{str(version)[:20]}")
    for name in ("batch_id", "ts_ms", "ua_class", "viewer", "events"):
        if name not in doc:
            raise Malformed(f"missing_field:{name}")
    if not _fixed([doc["batch_id"]], 26):
        raise Malformed("invalid_field:batch_id")
    if type(doc["ts_ms"]) is not int or doc["ts_ms"] < 0:
        raise Malformed("invalid_field:ts_ms")
    if doc["ua_class"] not in CLASSES:
        raise Malformed("invalid_field:ua_class")
    if not _fixed([doc["viewer"]], 32):
        raise Malformed("invalid_field:viewer")
    events = doc["events"]
    if type(events) is not list or not 1 <= len(events) <= MAX_EVENTS:
        raise Malformed("invalid_field:events")
    parsed = _events(events)
    if parsed is None:
        raise Malformed("invalid_field:events")
    return (doc["batch_id"], doc["ts_ms"], doc["ua_class"], doc["viewer"], parsed)
