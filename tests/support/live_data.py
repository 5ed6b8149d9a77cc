"""Test data and a Server-Sent Events reader for the live domain (real rows, real HTTP)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
from aiohttp import ClientResponse, ClientSession, ClientTimeout

from support.api import Account, AccountFactory, Api
from support.domains import verified_shop


async def insert_video(pool: asyncpg.Pool, owner_id: int, *, duration_s: float = 120.0,
                       status: str = "active", title: str = "Live replay") -> int:
    """A real `videos` row (the upload API lives on the videos branch)."""
    fps = 30.0
    video_id: int = await pool.fetchval(
        """INSERT INTO videos (owner_id, title, file_path, original_filename, size_bytes, duration_s,
                               fps, frame_count, width, height, codec, status)
           VALUES ($1, $2, $3, 'replay.mp4', 1048576, $4, $5, $6, 1280, 720, 'h264', $7)
           RETURNING id""",
        owner_id, title, f"/tmp/shoplink-test/{owner_id}-replay.mp4", duration_s, fps,
        max(1, int(duration_s * fps)), status)
    return video_id


async def set_timeline(pool: asyncpg.Pool, live_id: int, offsets: dict[int, float],
                       live_duration_s: float) -> None:
    """Rewrite a finished live's event offsets (by seq) and its start/end to a known timeline."""
    async with pool.acquire() as con, con.transaction():
        for seq, offset in offsets.items():
            await con.execute("UPDATE live_pin_events SET offset_s = $3 WHERE live_session_id = $1 "
                              "AND seq = $2", live_id, seq, offset)
        await con.execute("UPDATE live_sessions SET started_at = ended_at - make_interval(secs => $2) "
                          "WHERE id = $1", live_id, live_duration_s)


async def seller_with_products(make_account: AccountFactory, n: int, *, role: str = "seller",
                               domain: str = "shop.example") -> tuple[Account, list[int]]:
    seller = await make_account(role)
    shop = await verified_shop(seller, {"name": "Live shop", "domains": [domain]})
    ids = []
    for i in range(n):
        reply = await seller.post(f"/api/v1/shops/{shop['id']}/products", {
            "title": f"Product {i}", "url": f"https://{domain}/p/{i}", "price": f"{10 + i}.50",
            "currency": "EUR", "image_url": f"https://{domain}/img/{i}.jpg"})
        assert reply.status == 201, reply.body
        ids.append(reply.body["id"])
    return seller, ids


async def live_with_products(api: Api, product_ids: list[int], *, start: bool = False,
                             title: str = "Friday live") -> int:
    reply = await api.post("/api/v1/live", {"title": title, "product_ids": product_ids})
    assert reply.status == 201, reply.body
    live_id: int = reply.body["id"]
    if start:
        started = await api.post(f"/api/v1/live/{live_id}/start")
        assert started.status == 200, started.body
    return live_id


@dataclass
class SseEvent:
    id: int | None
    event: str
    data: Any


@dataclass
class SseStream:
    """Reads one text/event-stream response; comment lines are counted, not returned."""

    response: ClientResponse
    comments: list[str] = field(default_factory=list)
    retry: int | None = None

    async def next(self, timeout: float = 10.0, *, comments: bool = False) -> SseEvent | None:
        """The next event (or comment, if asked), or None at the end of the stream."""
        async with asyncio.timeout(timeout):
            fields: dict[str, str] = {}
            data: list[str] = []
            while True:
                raw = await self.response.content.readline()
                if not raw:
                    return None
                line = raw.decode().rstrip("\n").rstrip("\r")
                if line == "":
                    if data or fields:
                        return SseEvent(int(fields["id"]) if "id" in fields else None,
                                        fields.get("event", "message"),
                                        orjson.loads("\n".join(data)) if data else None)
                    continue
                if line.startswith(":"):
                    self.comments.append(line)
                    if comments:
                        return SseEvent(None, "comment", line)
                    continue
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "data":
                    data.append(value)
                elif name == "retry":
                    self.retry = int(value)
                else:
                    fields[name] = value

    async def events(self, n: int, timeout: float = 10.0) -> list[SseEvent]:
        out: list[SseEvent] = []
        for _ in range(n):
            event = await self.next(timeout)
            assert event is not None, f"stream ended after {out}"
            out.append(event)
        return out

    async def until(self, predicate: Any, timeout: float = 10.0) -> SseEvent:
        async with asyncio.timeout(timeout):
            while True:
                event = await self.next(timeout)
                assert event is not None, "stream ended"
                if predicate(event):
                    return event

    async def wait_comment(self, timeout: float = 10.0) -> None:
        """Reads until a comment (heartbeat) line arrives."""
        seen = len(self.comments)
        async with asyncio.timeout(timeout):
            while len(self.comments) == seen:
                event = await self.next(timeout, comments=True)
                assert event is not None and event.event != "end", "stream ended"


@asynccontextmanager
async def open_stream(http: ClientSession, base_url: str, live_id: int,
                      last_event_id: int | None = None, viewer: str | None = None) -> AsyncIterator[SseStream]:
    """`viewer`: a viewer cookie (`sl_vid`, 32 hex digits) to send, as a browser on our site would."""
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = str(last_event_id)
    if viewer is not None:
        headers["Cookie"] = f"sl_vid={viewer}"
    async with http.get(f"{base_url}/v1/live/{live_id}/events", headers=headers,
                        timeout=ClientTimeout(total=None, sock_read=None)) as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/event-stream")
        yield SseStream(response)

