"""Batches of player events written straight to the event streams (as POST /v1/events writes
them), and what the stats API must say about them."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
from redis.asyncio import Redis

from shoplink.ids import new_ulid

from support.analytics_data import Seed
from support.event_data import viewer
from support.funnel_data import STREAM_VALIDATOR

CLASSES = ("human", "human", "human", "bot", "link_preview")
_ID_FIELDS = ("anchor_id", "video_id", "live_session_id", "product_id", "shop_id", "creator_id", "plan_id")


def card(s: Seed, j: int, playback: float) -> dict[str, Any]:
    return {"type": "impression", "code": f"code{j}", "anchor_id": s.video_anchor_ids[j], "video_id": s.video_id,
            "live_session_id": None, "product_id": s.product_ids[j], "shop_id": s.shop_id,
            "creator_id": s.creator_id, "plan_id": None, "playback_s": playback, "quartile": None}


def surface(s: Seed, kind: str, quartile: int | None = None, live: bool = False) -> dict[str, Any]:
    return {"type": kind, "code": None, "anchor_id": None, "video_id": None if live else s.video_id,
            "live_session_id": s.live_id if live else None, "product_id": None, "shop_id": None,
            "creator_id": s.creator_id, "plan_id": None, "playback_s": 1.0, "quartile": quartile}


def funnel_batches(s: Seed, n: int, start_ms: int) -> list[dict[str, Any]]:
    """n batches (one page view each) of 1-6 events: impressions of the video's cards, a view,
    quartiles; every fifth a live view; classes and viewers varied."""
    out = []
    for i in range(n):
        events = [card(s, i % len(s.video_anchor_ids), float(i % 9))]
        if i % 2 == 0:
            events.append(surface(s, "view"))
            events.extend(surface(s, "progress", q) for q in (25, 50, 75, 100)[: i % 5])
        if i % 5 == 0:
            events.append(surface(s, "view", live=True))
        doc = {"schema_version": 1, "batch_id": new_ulid(start_ms + i * 10), "ts_ms": start_ms + i * 10,
               "viewer": viewer(i % 53), "ua_class": CLASSES[i % 5], "page_view": secrets.token_hex(8),
               "referrer_host": None, "events": events}
        STREAM_VALIDATOR.validate(doc)
        out.append(doc)
    return out


def shard_of(doc: dict[str, Any]) -> int:
    first = doc["events"][0]
    return int(first["anchor_id"] or first["video_id"] or first["live_session_id"]) % 4


async def write_batches(redis: Redis, docs: Iterable[dict[str, Any]]) -> None:
    pipe = redis.pipeline(transaction=False)
    for doc in docs:
        pipe.xadd(f"shoplink:events:{{{shard_of(doc)}}}", {"e": orjson.dumps(doc)})
    await pipe.execute()


def expected_funnel(docs: Sequence[dict[str, Any]], field: str, entity_id: int) -> dict[str, Any]:
    """The stats API's funnel counts for (field, entity_id), from the batches."""
    out: dict[str, Any] = {"impressions": {"human": 0, "bot": 0, "link_preview": 0},
                           "views": {"human": 0, "bot": 0, "link_preview": 0},
                           "q": {25: 0, 50: 0, 75: 0, 100: 0}, "shown_to": set()}
    for doc in docs:
        ua = doc["ua_class"]
        for e in doc["events"]:
            if e[field] != entity_id:
                continue
            if e["type"] == "impression":
                out["impressions"][ua] += 1
                if ua == "human":
                    out["shown_to"].add(doc["viewer"])
            elif e["type"] == "view":
                out["views"][ua] += 1
            elif ua == "human":
                out["q"][e["quartile"]] += 1
    return out
