"""Live session rules: the state machine, the product set, pins, and the shoppable replay.

Every change viewers see is one row of `live_pin_events`, numbered per session under the
session's row lock, committed, then published (this instance's viewers at once, the others
through Redis; anything missed is read back from PostgreSQL by sequence number).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from shoplink.anchors.models import Anchor, NewVideoAnchor
from shoplink.anchors.rights import PromotionRights
from shoplink.auth import policy
from shoplink.auth.models import Principal
from shoplink.catalog.urls import UrlRejected, normalize_url
from shoplink.changes import Change, ChangeBus
from shoplink.db import Conn
from shoplink.errors import Conflict, NotFound, ValidationFailed, field_error
from shoplink.live import repository as repo
from shoplink.live.hub import LiveHub
from shoplink.live.models import (
    ENDED,
    LIVE,
    SCHEDULED,
    LiveEvent,
    LiveSession,
    LiveState,
    Pin,
    SetProduct,
    replay_ranges,
)
from shoplink.times import parse_datetime
from shoplink.videos.models import Video

log = logging.getLogger(__name__)

# Why a transition is refused, by (current status, wanted action).
_ILLEGAL = {
    (LIVE, "start"): "the live session is already live",
    (ENDED, "start"): "the live session has ended; create a new session to go live again",
    (SCHEDULED, "end"): "the live session has not started; start it before ending it",
    (ENDED, "end"): "the live session has already ended",
}


def parse_planned_start(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        value = parse_datetime(raw)
    except ValueError:
        raise field_error("planned_start_at", "must be an ISO 8601 date-time") from None
    if value.tzinfo is None:
        raise field_error("planned_start_at", "must include a time zone (e.g. Z or +02:00)")
    return value


class LiveAnchors(Protocol):
    """The anchors domain, as live sessions need it: each call joins the caller's transaction."""

    async def add_live_anchors(self, con: Conn, session_id: int, publisher_id: int,
                               products: Sequence[tuple[int, int | None]]) -> None: ...

    async def archive_live_anchor(self, con: Conn, anchor_id: int) -> None: ...

    async def add_replay_anchors(self, con: Conn, video_id: int, publisher_id: int,
                                 anchors: Sequence[NewVideoAnchor]) -> list[Anchor]: ...


class ReplayVideos(Protocol):
    """The videos domain, as a replay needs it."""

    async def public(self, video_id: int) -> Video | None:
        """An active video (no ownership check)."""


class LiveService:
    def __init__(self, pool: asyncpg.Pool, hub: LiveHub, rights: PromotionRights, anchors: LiveAnchors,
                 videos: ReplayVideos, changes: ChangeBus, *, max_products: int, max_pins: int,
                 allow_http_urls: bool = False) -> None:
        self._pool = pool
        self.hub = hub
        self._rights = rights
        self._anchors = anchors
        self._videos = videos
        self._changes = changes
        self.max_products = max_products
        self.max_pins = max_pins
        self.allow_http_urls = allow_http_urls

    def _stream_url(self, raw: str | None) -> str | None:
        """The host's stream: an absolute https URL (http too with SHOPLINK_ALLOW_HTTP_URLS), or None."""
        if raw is None:
            return None
        try:
            return normalize_url(raw.strip(), allow_http=self.allow_http_urls)[0]
        except UrlRejected as exc:
            raise field_error("stream_url", str(exc), code="invalid_url") from None

    # ---- sessions --------------------------------------------------------------------------

    async def _owned(self, con: Conn, who: Principal, session_id: int, *,
                     for_update: bool = False) -> LiveSession:
        session = await repo.get_session(con, session_id, for_update=for_update)
        if session is None:
            raise NotFound("live session not found")
        policy.require_owner(who, session.owner_id, "live session")
        return session

    async def create(self, who: Principal, body: dict[str, Any]) -> LiveSession:
        policy.require(who, "media.publish")
        title = body["title"].strip()
        if not title:
            raise field_error("title", "must not be blank")
        planned = parse_planned_start(body.get("planned_start_at"))
        stream_url = self._stream_url(body.get("stream_url"))
        product_ids = list(dict.fromkeys(body.get("product_ids", [])))
        rights = await self._check_rights(who, product_ids, "product_ids")
        if len(product_ids) > self.max_products:
            raise field_error("product_ids", f"at most {self.max_products} products per live session",
                              code="too_many_products")
        async with self._pool.acquire() as con, con.transaction():
            session_id = await repo.insert_session(con, who.account_id, title, planned, stream_url)
            await self._anchors.add_live_anchors(con, session_id, who.account_id, rights)
            session = await repo.get_session(con, session_id)
        assert session is not None
        return session

    async def get(self, who: Principal, session_id: int) -> LiveSession:
        async with self._pool.acquire() as con:
            return await self._owned(con, who, session_id)

    async def host_view(self, who: Principal, session_id: int) -> tuple[LiveSession, list[SetProduct],
                                                                         LiveState, int]:
        """Everything the host's console shows: the session, its set, current pins, viewers."""
        async with self._pool.acquire() as con:
            session = await self._owned(con, who, session_id)
            products = await repo.set_products(con, session_id)
            state = await repo.load_state(con, session_id)
        assert state is not None
        return session, products, state, await self.hub.viewer_count(session_id)

    async def list_sessions(self, who: Principal, status: str | None, limit: int,
                   after_id: int) -> list[LiveSession]:
        owner = None if who.is_admin else who.account_id
        async with self._pool.acquire() as con:
            return await repo.list_sessions(con, owner, status, limit, after_id)

    async def update(self, who: Principal, session_id: int, body: dict[str, Any]) -> LiveSession:
        changes: dict[str, Any] = {}
        if "title" in body:
            changes["title"] = body["title"].strip()
            if not changes["title"]:
                raise field_error("title", "must not be blank")
        if "planned_start_at" in body:
            changes["planned_start_at"] = parse_planned_start(body["planned_start_at"])
        if "stream_url" in body:
            changes["stream_url"] = self._stream_url(body["stream_url"])
        async with self._pool.acquire() as con, con.transaction():
            session = await self._owned(con, who, session_id, for_update=True)
            if "planned_start_at" in changes and session.status != SCHEDULED:
                raise Conflict(f"the planned start can only change while scheduled (the session is "
                               f"{session.status})", code="illegal_state")
            await repo.update_session(con, session_id, changes)
            updated = await repo.get_session(con, session_id)
        assert updated is not None
        await self._changes.publish(Change("live", session_id))
        return updated

    # ---- the product set -------------------------------------------------------------------

    async def _check_rights(self, who: Principal, product_ids: list[int],
                            field: str) -> list[tuple[int, int | None]]:
        """(product id, plan id) for each product the publisher may promote, or a 422 listing all."""
        out: list[tuple[int, int | None]] = []
        errors: list[dict[str, Any]] = []
        for i, product_id in enumerate(product_ids):
            try:
                right = await self._rights.check(who, product_id, field=f"{field}.{i}")
            except ValidationFailed as exc:
                errors.extend(exc.details or [])
                continue
            out.append((product_id, right.plan_id))
        if errors:
            raise ValidationFailed(f"{len(errors)} product(s) cannot be added; nothing was stored",
                                   details=errors[:100])
        return out

    async def add_products(self, who: Principal, session_id: int,
                           product_ids: list[int]) -> list[SetProduct]:
        product_ids = list(dict.fromkeys(product_ids))
        async with self._pool.acquire() as con:
            session = await self._owned(con, who, session_id)
        if session.status == ENDED:
            raise Conflict("the live session has ended; its product set is final", code="illegal_state")
        rights = await self._check_rights(who, product_ids, "product_ids")
        async with self._pool.acquire() as con, con.transaction():
            session = await self._owned(con, who, session_id, for_update=True)
            if session.status == ENDED:
                raise Conflict("the live session has ended; its product set is final",
                               code="illegal_state")
            present = await repo.set_product_ids(con, session_id)
            new = [(pid, plan) for pid, plan in rights if pid not in present]
            if len(present) + len(new) > self.max_products:
                raise field_error("product_ids", f"at most {self.max_products} products per live "
                                  f"session ({len(present)} already in the set)",
                                  code="too_many_products")
            await self._anchors.add_live_anchors(con, session_id, session.owner_id, new)
            products = await repo.set_products(con, session_id)
        await self._changes.publish(Change("live", session_id))
        return products

    async def remove_product(self, who: Principal, session_id: int, product_id: int) -> None:
        async with self._pool.acquire() as con, con.transaction():
            session = await self._owned(con, who, session_id, for_update=True)
            if session.status == ENDED:
                raise Conflict("the live session has ended; its product set is final",
                               code="illegal_state")
            item = await repo.set_product(con, session_id, product_id)
            if item is None:
                raise NotFound("the product is not in this live session's set")
            if await repo.get_pin(con, session_id, product_id) is not None:
                raise Conflict("the product is pinned; unpin it before removing it", code="pinned")
            await self._anchors.archive_live_anchor(con, item.anchor_id)
        await self._changes.publish(Change("anchor", item.anchor_id))
        await self._changes.publish(Change("live", session_id))

    async def products(self, who: Principal, session_id: int) -> list[SetProduct]:
        async with self._pool.acquire() as con:
            await self._owned(con, who, session_id)
            return await repo.set_products(con, session_id)

    # ---- state machine ----------------------------------------------------------------------

    async def _transition(self, who: Principal, session_id: int, action: str) -> LiveSession:
        async with self._pool.acquire() as con, con.transaction():
            session = await self._owned(con, who, session_id, for_update=True)
            reason = _ILLEGAL.get((session.status, action))
            if reason is not None:
                raise Conflict(reason, code="illegal_transition",
                               details={"status": session.status, "action": action})
            if action == "start":
                await repo.mark_started(con, session_id)
            else:
                await repo.mark_ended(con, session_id)
            updated = await repo.get_session(con, session_id)
            assert updated is not None
            stamp = updated.started_at if action == "start" else updated.ended_at
            assert stamp is not None
            key = "started_at" if action == "start" else "ended_at"
            event = await repo.insert_event(con, session_id, action, None, {key: stamp.isoformat()})
            updated = await repo.get_session(con, session_id)
        assert updated is not None
        await self._after(event)
        log.info("live session %s", "started" if action == "start" else "ended",
                 extra={"live_session_id": session_id})
        return updated

    async def start(self, who: Principal, session_id: int) -> LiveSession:
        return await self._transition(who, session_id, "start")

    async def end(self, who: Principal, session_id: int) -> LiveSession:
        return await self._transition(who, session_id, "end")

    async def _after(self, event: LiveEvent) -> None:
        await self.hub.publish(event)
        await self._changes.publish(Change("live", event.session_id))

    # ---- pins -------------------------------------------------------------------------------

    def _require_live(self, session: LiveSession, what: str) -> None:
        if session.status != LIVE:
            raise Conflict(f"products can be {what} only while the session is live (it is "
                           f"{session.status})", code="not_live", details={"status": session.status})

    async def pin(self, who: Principal, session_id: int, product_id: int) -> LiveState:
        async with self._pool.acquire() as con:
            session = await self._owned(con, who, session_id)
            self._require_live(session, "pinned")
            item = await repo.set_product(con, session_id, product_id)
        if item is None:
            raise field_error("product_id", "the product is not in this live session's product set",
                              code="not_in_set")
        right = await self._rights.check(who, product_id)  # delisted (or no longer promotable)
        product = right.product
        async with self._pool.acquire() as con, con.transaction():
            session = await self._owned(con, who, session_id, for_update=True)
            self._require_live(session, "pinned")
            item = await repo.set_product(con, session_id, product_id)
            if item is None:
                raise field_error("product_id", "the product is not in this live session's product "
                                  "set", code="not_in_set")
            if await repo.get_pin(con, session_id, product_id) is not None:
                raise Conflict("the product is already pinned", code="already_pinned")
            pinned = await repo.count_pins(con, session_id)
            if pinned >= self.max_pins:
                raise Conflict(f"at most {self.max_pins} products can be pinned at once; unpin one "
                               "first", code="pin_limit", details={"max_pins": self.max_pins})
            assert session.started_at is not None  # live
            offset = await repo.seconds_since(con, session.started_at)
            snapshot = Pin(product_id=product.id, code=item.code, title=product.title,
                           price=product.price, price_minor=product.price_minor,
                           currency=product.currency, image_url=product.image_url,
                           pinned_offset_s=float(offset)).snapshot()
            event = await repo.insert_event(con, session_id, "pin", product_id, snapshot)
            await repo.insert_pin(con, session_id, item.anchor_id, event)
            state = await repo.load_state(con, session_id)
        assert state is not None
        await self._after(event)
        return state

    async def unpin(self, who: Principal, session_id: int, product_id: int) -> LiveState:
        async with self._pool.acquire() as con, con.transaction():
            session = await self._owned(con, who, session_id, for_update=True)
            self._require_live(session, "unpinned")
            if await repo.get_pin(con, session_id, product_id) is None:
                raise NotFound("the product is not pinned")
            event = await repo.insert_event(con, session_id, "unpin", product_id, {})
            await repo.delete_pin(con, session_id, product_id)
            state = await repo.load_state(con, session_id)
        assert state is not None
        await self._after(event)
        return state

    async def set_sold_out(self, who: Principal, session_id: int, product_id: int,
                           sold_out: bool) -> LiveState:
        async with self._pool.acquire() as con, con.transaction():
            session = await self._owned(con, who, session_id, for_update=True)
            self._require_live(session, "flagged")
            pin = await repo.get_pin(con, session_id, product_id)
            if pin is None:
                raise NotFound("the product is not pinned")
            event = None
            if pin.sold_out != sold_out:  # same flag again: nothing changes, no event
                event = await repo.insert_event(con, session_id, "sold_out", product_id,
                                                {"sold_out": sold_out})
                await repo.set_sold_out(con, session_id, product_id, sold_out)
            state = await repo.load_state(con, session_id)
        assert state is not None
        if event is not None:
            await self._after(event)
        return state

    async def timeline(self, who: Principal, session_id: int) -> list[LiveEvent]:
        async with self._pool.acquire() as con:
            await self._owned(con, who, session_id)
            return await repo.timeline(con, session_id)

    # ---- viewers (public) -------------------------------------------------------------------

    async def public_state(self, session_id: int) -> LiveState:
        async with self._pool.acquire() as con:
            state = await repo.load_state(con, session_id)
        if state is None:
            raise NotFound("live session not found")
        return state

    async def events_between(self, session_id: int, after_seq: int, upto_seq: int) -> list[LiveEvent]:
        async with self._pool.acquire() as con:
            return await repo.events_after(con, session_id, after_seq, upto_seq)

    # ---- replay -----------------------------------------------------------------------------

    async def attach_replay(self, who: Principal, session_id: int, video_id: int,
                            offset_s: float) -> tuple[LiveSession, list[dict[str, Any]],
                                                      list[dict[str, Any]]]:
        """Attach the recording and create its video anchors from the pin timeline.

        Returns (session, created anchors, skipped products with the reason).
        """
        async with self._pool.acquire() as con:
            session = await self._owned(con, who, session_id)
            if session.status != ENDED:
                raise Conflict(f"a replay can be attached only after the live has ended (it is "
                               f"{session.status})", code="not_ended",
                               details={"status": session.status})
            events = await repo.timeline(con, session_id)
        video = await self._videos.public(video_id)
        if video is None or video.owner_id != session.owner_id:
            raise field_error("video_id", "no active video of the session's owner has this id",
                              code="unknown_video")
        assert session.started_at is not None and session.ended_at is not None
        live_duration = (session.ended_at - session.started_at).total_seconds()
        ranges = replay_ranges(events, live_duration_s=live_duration, offset_s=offset_s,
                               video_duration_s=video.duration_s)
        plans: dict[int, int | None] = {}
        skipped: list[dict[str, Any]] = []
        for product_id in dict.fromkeys(r.product_id for r in ranges):
            try:
                plans[product_id] = (await self._rights.check(who, product_id)).plan_id
            except ValidationFailed as exc:  # delisted since, or no longer in the plan
                detail = exc.details[0] if exc.details else {"code": exc.code, "message": exc.message}
                skipped.append({"product_id": product_id, "reason": detail["code"],
                                "message": detail["message"]})
        ranges = [r for r in ranges if r.product_id in plans]
        async with self._pool.acquire() as con, con.transaction():
            session = await self._owned(con, who, session_id, for_update=True)
            if session.replay_video_id is not None:
                raise Conflict(f"video {session.replay_video_id} is already this session's replay",
                               code="replay_attached")
            anchors = await self._anchors.add_replay_anchors(
                con, video_id, session.owner_id,
                [NewVideoAnchor(r.product_id, plans[r.product_id], r.start_s, r.end_s) for r in ranges])
            await repo.set_replay(con, session_id, video_id)
            updated = await repo.get_session(con, session_id)
        assert updated is not None
        created = [{"id": a.id, "code": a.code, "product_id": a.product_id, "start_s": a.start_s,
                    "end_s": a.end_s, "plan_id": a.plan_id} for a in anchors]
        await self._changes.publish(Change("video", video_id))
        await self._changes.publish(Change("live", session_id))
        return updated, created, skipped
