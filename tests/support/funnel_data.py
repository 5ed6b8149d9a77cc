"""Player events (POST /v1/events) in tests: bodies, and reading the event streams."""

from __future__ import annotations

import json
import secrets
from typing import Any

import jsonschema
import orjson
from redis.asyncio import Redis

from shoplink.paths import SCHEMAS_DIR

from support.api import Api, Reply
from support.click_data import xrange
from support.wait import until

STREAM_VALIDATOR = jsonschema.Draft202012Validator(
    json.loads((SCHEMAS_DIR / "events" / "stream_batch.schema.json").read_text()))
BEACON_VALIDATOR = jsonschema.Draft202012Validator(
    json.loads((SCHEMAS_DIR / "events" / "beacon.schema.json").read_text()))


def page_view() -> str:
    return secrets.token_hex(16)


async def beacon(anon: Api, events: list[dict[str, Any]], *, pv: str | None = None,
                 headers: dict[str, str] | None = None) -> Reply:
    """POST the events as sendBeacon does (text/plain)."""
    body = orjson.dumps({"pv": pv or page_view(), "events": events})
    return await anon.request("POST", "/v1/events", data=body,
                              headers={"Content-Type": "text/plain;charset=UTF-8",
                                       "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120",
                                       **(headers or {})})


async def event_batches(redis: Redis, shards: int = 4) -> list[dict[str, Any]]:
    """Every batch on shoplink:events:{0..shards-1}, each checked against its schema."""
    out = []
    for shard in range(shards):
        for _id, fields in await xrange(redis, f"shoplink:events:{{{shard}}}"):
            assert list(fields) == [b"e"], fields
            doc = orjson.loads(fields[b"e"])
            STREAM_VALIDATOR.validate(doc)
            doc["_shard"] = shard
            out.append(doc)
    return out


async def wait_for_player_events(redis: Redis, count: int, shards: int = 4) -> list[dict[str, Any]]:
    """Every streamed player event (with its batch's fields under "_batch"), once >= count."""
    async def enough() -> tuple[list[dict[str, Any]]] | None:
        events = [{**e, "_batch": b} for b in await event_batches(redis, shards) for e in b["events"]]
        return (events,) if len(events) >= count else None

    found: tuple[list[dict[str, Any]]] = await until(enough, timeout=10, interval=0.02,
                                                      what=f"{count} player events in the event streams")
    return found[0]
