"""Click events exactly as the producer (/r/{code}) writes them: XADD to shoplink:clicks:{n}
with one field `e` = orjson bytes of a schema-valid event. Every event built here is validated
against schemas/click_event.schema.json, so the tests exercise the real contract."""

from __future__ import annotations

import hashlib
import json
import zlib
from collections.abc import Iterable, Sequence
from functools import cache
from typing import Any

import orjson
from jsonschema import Draft202012Validator
from redis.asyncio import Redis

from shoplink.ids import new_ulid
from shoplink.paths import SCHEMAS_DIR

DEFAULT_SHARDS = 4


@cache
def validator() -> Draft202012Validator:
    schema = json.loads((SCHEMAS_DIR / "click_event.schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def viewer(n: int | str) -> str:
    """A 32-hex viewer hash, stable for a given n."""
    return hashlib.sha256(f"viewer-{n}".encode()).hexdigest()[:32]


def event(*, ts_ms: int, anchor_id: int | None = 1, video_id: int | None = 10,
          live_session_id: int | None = None, product_id: int | None = 100, shop_id: int | None = 1000,
          creator_id: int | None = 7, plan_id: int | None = None, outcome: str = "redirected",
          ua_class: str = "human", viewer_id: int | str = 1, playback_s: float | None = 12.5,
          code: str = "abcDEF12", event_id: str | None = None, **extra: Any) -> dict[str, Any]:
    """One schema-valid click event (validated here)."""
    surface = "video" if video_id is not None else "live" if live_session_id is not None else "unknown"
    doc: dict[str, Any] = {
        "schema_version": 1,
        "event_id": event_id or new_ulid(ts_ms),
        "ts_ms": ts_ms,
        "code": code,
        "outcome": outcome,
        "surface": surface,
        "anchor_id": anchor_id,
        "video_id": video_id,
        "live_session_id": live_session_id,
        "playback_s": playback_s if surface != "unknown" else None,
        "t_status": "ok" if playback_s is not None and surface != "unknown" else "absent",
        "product_id": product_id,
        "shop_id": shop_id,
        "creator_id": creator_id,
        "plan_id": plan_id,
        "commission": {"rate_bp": 1000, "source": "plan_rate"} if plan_id is not None else None,
        "viewer": viewer(viewer_id),
        "new_viewer": False,
        "net": hashlib.sha256(b"net").hexdigest()[:16],
        "ua_class": ua_class,
        "ua_family": None if ua_class == "human" else "slackbot",
        "referrer_host": "social.example",
        "replayed": False,
    }
    doc.update(extra)
    validator().validate(doc)
    return doc


def shard_of(doc: dict[str, Any], shards: int = DEFAULT_SHARDS) -> int:
    """anchor_id % shards; unknown codes: a stable hash of the code."""
    if doc.get("anchor_id") is not None:
        return int(doc["anchor_id"]) % shards
    return zlib.crc32(doc["code"].encode()) % shards


def stream_key(shard: int) -> str:
    return f"shoplink:clicks:{{{shard}}}"


async def write_events(redis: Redis, docs: Iterable[dict[str, Any]], shards: int = DEFAULT_SHARDS,
                       chunk: int = 5000) -> list[bytes]:
    """XADD each event to its shard (pipelined); returns the stream ids."""
    ids: list[bytes] = []
    batch: list[dict[str, Any]] = []

    async def flush() -> None:
        pipe = redis.pipeline(transaction=False)
        for doc in batch:
            pipe.xadd(stream_key(shard_of(doc, shards)), {"e": orjson.dumps(doc)})
        ids.extend(await pipe.execute())
        batch.clear()

    for doc in docs:
        batch.append(doc)
        if len(batch) >= chunk:
            await flush()
    if batch:
        await flush()
    return ids


async def write_raw(redis: Redis, shard: int, fields: dict[str, bytes | str]) -> bytes:
    """A raw (possibly malformed) entry, as a buggy or foreign producer might write it."""
    sid = await redis.xadd(stream_key(shard), fields)  # type: ignore[arg-type]
    assert isinstance(sid, bytes)
    return sid


def expected_counts(docs: Sequence[dict[str, Any]], kind_field: str, entity_id: int) -> dict[str, Any]:
    """What the stats totals must say for one entity, computed from the events themselves."""
    seen: set[str] = set()
    by_class = {"human": 0, "bot": 0, "link_preview": 0}
    by_outcome = {"redirected": 0, "fallback": 0, "gone": 0, "not_found": 0}
    viewers: set[str] = set()
    for doc in docs:
        if doc["event_id"] in seen or doc.get(kind_field) != entity_id:
            continue
        seen.add(doc["event_id"])
        by_class[doc["ua_class"]] += 1
        by_outcome[doc["outcome"]] += 1
        if doc["ua_class"] == "human":
            viewers.add(doc["viewer"])
    return {"clicks": sum(by_class.values()), "by_class": by_class, "by_outcome": by_outcome,
            "unique_viewers": len(viewers)}
