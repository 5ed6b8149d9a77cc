"""Anchor rules: products on video time ranges, thumbnails, snapping, the viewer timeline.

Every anchor is created, changed and archived here (anchors/repository.py is the only writer of
the table). Other domains use this service rather than the repository:
`create_video_anchor`, `update_video_anchor`, `archive_anchor`, `list_for_video`, `by_code`,
`timeline_source` (the viewer JSON of a video's active anchors); live sessions
`add_live_anchors`, `archive_live_anchor` and `add_replay_anchors`, which run inside the live
service's transaction (the caller passes its connection and publishes the changes after commit).
"""

from __future__ import annotations

import logging
import math
import re
from collections import OrderedDict
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg

from shoplink.anchors import qr
from shoplink.anchors import repository as repo
from shoplink.anchors.codes import with_new_code
from shoplink.anchors.models import Anchor, NewVideoAnchor, link, thumbnail_url
from shoplink.anchors.rights import PromotionRights
from shoplink.anchors.timeline import TimelineItem, TimelineSource
from shoplink.auth import policy
from shoplink.auth.models import Principal
from shoplink.catalog.service import CatalogService
from shoplink.changes import Change, ChangeBus
from shoplink.db import Conn
from shoplink.errors import Conflict, NotFound, ServiceUnavailable, field_error
from shoplink.videos import thumbnails
from shoplink.videos.models import Video
from shoplink.videos.service import VideoService, rejected

log = logging.getLogger(__name__)

EPSILON_S = 1e-6  # float slack when comparing a range end with the probed duration
CODE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{6,32}$")
QR_CACHE_ENTRIES = 2048


async def archive_for_deleted_video(con: Conn, video_id: int) -> list[Change]:
    """VideoService's delete hook: a deleted video's anchors are archived in the same
    transaction; returns the changes to publish after commit."""
    ids = await repo.archive_for_video(con, video_id)
    return [Change("anchor", i) for i in ids]


class AnchorService:
    def __init__(self, pool: asyncpg.Pool, videos: VideoService, catalog: CatalogService,
                 rights: PromotionRights, changes: ChangeBus, *, max_per_video: int,
                 public_base_url: str, snap_tolerance_s: float) -> None:
        self._pool = pool
        self._videos = videos
        self._catalog = catalog
        self._rights = rights
        self._changes = changes
        self.max_per_video = max_per_video
        self.base_url = public_base_url
        self.snap_tolerance_s = snap_tolerance_s
        self._qr_cache: OrderedDict[tuple[str, int, str], bytes] = OrderedDict()

    def to_json(self, anchor: Anchor) -> dict[str, Any]:
        return anchor.to_json(self.base_url)

    # ---- validation --------------------------------------------------------------------

    @staticmethod
    def _finite(value: Any, field: str) -> float:
        # JSON Schema has checked the type; this guards direct callers (and NaN/inf).
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise field_error(field, "must be a finite number")
        return float(value)

    def _check_range(self, video: Video, start: float, end: float) -> None:
        if start < 0:
            raise rejected("start_s", "must be 0 or more", "out_of_range")
        if start >= end:
            raise rejected("end_s", "must be greater than start_s", "empty_range")
        if end > video.duration_s + EPSILON_S:
            raise rejected("end_s", f"must be at most the video's duration ({video.duration_s:g} s)",
                           "out_of_range")

    @staticmethod
    def _check_position(position: dict[str, float] | None) -> None:
        if position is None:
            return
        for axis, extent in (("x", "w"), ("y", "h")):
            if position[axis] + position.get(extent, 0.0) > 1.0 + EPSILON_S:
                raise field_error(f"position.{extent}", f"{axis} + {extent} must be at most 1 "
                                  "(fractions of the frame)")

    async def _snap(self, video: Video, start: float, end: float,
                    tolerance: float) -> tuple[float, float]:
        """Move start/end to the nearest scene cut (or the video's ends) within `tolerance`."""
        targets = [0.0, *await self._videos.scene_cuts(video), video.duration_s]

        def nearest(t: float) -> float:
            best = min(targets, key=lambda c: abs(c - t))
            return best if abs(best - t) <= tolerance else t

        snapped = nearest(start), nearest(end)
        if snapped[0] >= snapped[1]:
            raise rejected("snap", "snapping to scene cuts would leave an empty range", "empty_range")
        return snapped

    def _thumbnail_time(self, start: float, thumbnail_s: float | None, end: float) -> float:
        if thumbnail_s is None:
            return start
        if not start <= thumbnail_s < end:
            raise rejected("thumbnail_s", "must be within [start_s, end_s)", "out_of_range")
        return thumbnail_s

    async def _cut_thumbnail(self, video: Video, seconds: float) -> str:
        index = thumbnails.frame_at(seconds, video.fps, video.frame_count)
        try:
            return await self._videos.workers.run(thumbnails.cut, Path(video.file_path), index,
                                                  self._videos.store.thumbnails)
        except thumbnails.ThumbnailError as exc:
            log.error("thumbnail failed", extra={"video_id": video.id, "error": str(exc)})
            raise ServiceUnavailable(f"the thumbnail cannot be cut: {exc}",
                                     code="thumbnail_failed") from None

    async def _limit_check(self, con: Conn, video_id: int) -> None:
        if await repo.count_active_for_video(con, video_id) >= self.max_per_video:
            raise rejected("video_id", f"a video may carry at most {self.max_per_video} anchors",
                           "anchor_limit")

    # ---- create / update / archive -----------------------------------------------------

    async def create_video_anchor(self, who: Principal, video_id: int, body: dict[str, Any]) -> Anchor:
        """body: product_id, start_s, end_s, [label, position, thumbnail_s, snap, snap_tolerance_s]."""
        self._videos.require_publisher(who)
        video = await self._videos.get(who, video_id)
        start = self._finite(body["start_s"], "start_s")
        end = self._finite(body["end_s"], "end_s")
        if body.get("snap"):
            tolerance = float(body.get("snap_tolerance_s", self.snap_tolerance_s))
            start, end = await self._snap(video, start, end, tolerance)
        self._check_range(video, start, end)
        end = min(end, video.duration_s)
        thumb_s = body.get("thumbnail_s")
        thumb_at = self._thumbnail_time(start, None if thumb_s is None else
                                        self._finite(thumb_s, "thumbnail_s"), end)
        position = body.get("position")
        self._check_position(position)
        right = await self._rights.check(who, int(body["product_id"]))
        async with self._pool.acquire() as con:  # fail fast before cutting a thumbnail
            await self._limit_check(con, video.id)
        thumb = await self._cut_thumbnail(video, thumb_at)
        label = (body.get("label") or "").strip() or None
        async with self._pool.acquire() as con, con.transaction():
            if not await repo.lock_video(con, video.id):
                raise NotFound("video not found")
            await self._limit_check(con, video.id)
            anchor = await with_new_code(con, partial(
                repo.insert_video_anchor, con, video_id=video.id, product_id=right.product.id,
                publisher_id=video.owner_id, plan_id=right.plan_id, start_s=start, end_s=end,
                thumbnail_s=thumb_s, label=label, position=position, thumbnail_path=thumb))
        await self._published(anchor)
        log.info("anchor created", extra={"anchor_id": anchor.id, "video_id": video.id,
                                          "product_id": anchor.product_id, "plan_id": anchor.plan_id})
        return anchor

    async def _owned_video_anchor(self, who: Principal, video_id: int, anchor_id: int) -> tuple[
            Video, Anchor]:
        video = await self._videos.get(who, video_id)
        async with self._pool.acquire() as con:
            anchor = await repo.get_anchor(con, anchor_id)
        if anchor is None or anchor.video_id != video.id:
            raise NotFound("anchor not found")
        policy.require_owner(who, anchor.publisher_id, "anchor")
        return video, anchor

    async def get_video_anchor(self, who: Principal, video_id: int, anchor_id: int) -> Anchor:
        return (await self._owned_video_anchor(who, video_id, anchor_id))[1]

    async def update_video_anchor(self, who: Principal, video_id: int, anchor_id: int,
                                  body: dict[str, Any]) -> Anchor:
        """Move/resize the range, change the product, label, position or thumbnail time."""
        video, anchor = await self._owned_video_anchor(who, video_id, anchor_id)
        if not anchor.active:
            raise Conflict("the anchor is archived", code="anchor_archived")
        assert anchor.start_s is not None and anchor.end_s is not None
        start = self._finite(body.get("start_s", anchor.start_s), "start_s")
        end = self._finite(body.get("end_s", anchor.end_s), "end_s")
        if body.get("snap"):
            tolerance = float(body.get("snap_tolerance_s", self.snap_tolerance_s))
            start, end = await self._snap(video, start, end, tolerance)
        self._check_range(video, start, end)
        end = min(end, video.duration_s)
        changes: dict[str, Any] = {}
        if (start, end) != (anchor.start_s, anchor.end_s):
            changes.update(start_s=start, end_s=end)
        thumb_s = anchor.thumbnail_s
        if "thumbnail_s" in body:
            thumb_s = None if body["thumbnail_s"] is None else self._finite(body["thumbnail_s"],
                                                                             "thumbnail_s")
            changes["thumbnail_s"] = thumb_s
        elif thumb_s is not None and not start <= thumb_s < end:
            thumb_s = changes["thumbnail_s"] = None  # the chosen frame fell out of the range
        thumb_at = self._thumbnail_time(start, thumb_s, end)
        old_at = anchor.thumbnail_s if anchor.thumbnail_s is not None else anchor.start_s
        if (thumbnails.frame_at(thumb_at, video.fps, video.frame_count)
                != thumbnails.frame_at(old_at, video.fps, video.frame_count)
                or anchor.thumbnail_path is None):
            changes["thumbnail_path"] = await self._cut_thumbnail(video, thumb_at)
        if "product_id" in body and int(body["product_id"]) != anchor.product_id:
            right = await self._rights.check(who, int(body["product_id"]))
            changes.update(product_id=right.product.id, plan_id=right.plan_id)
        if "label" in body:
            changes["label"] = (body["label"] or "").strip() or None
        if "position" in body:
            self._check_position(body["position"])
            changes["position"] = body["position"]
        if not changes:
            return anchor
        async with self._pool.acquire() as con, con.transaction():
            current = await repo.get_anchor(con, anchor.id, for_update=True)
            if current is None or not current.active:
                raise Conflict("the anchor is archived", code="anchor_archived")
            updated = await repo.update_anchor(con, anchor.id, changes)
        await self._published(updated)
        return updated

    async def archive_anchor(self, who: Principal, anchor_id: int) -> Anchor:
        """Archive (never delete: the code is never reused, clicks keep their history). Any surface."""
        async with self._pool.acquire() as con, con.transaction():
            anchor = await repo.get_anchor(con, anchor_id, for_update=True)
            if anchor is None:
                raise NotFound("anchor not found")
            policy.require_owner(who, anchor.publisher_id, "anchor")
            archived = await repo.archive(con, anchor_id) if anchor.active else anchor
        if anchor.active:
            await self._published(archived)
        return archived

    async def archive_video_anchor(self, who: Principal, video_id: int, anchor_id: int) -> Anchor:
        await self._owned_video_anchor(who, video_id, anchor_id)
        return await self.archive_anchor(who, anchor_id)

    # ---- for live sessions (inside the live service's transaction) -------------------------

    async def add_live_anchors(self, con: Conn, session_id: int, publisher_id: int,
                               products: Sequence[tuple[int, int | None]]) -> None:
        """A live anchor for each (product id, plan id): the session's product set. A product
        already in the set is left as it is."""
        for product_id, plan_id in products:
            await with_new_code(con, partial(repo.insert_live_anchor, con, session_id=session_id,
                                             product_id=product_id, publisher_id=publisher_id,
                                             plan_id=plan_id))

    async def archive_live_anchor(self, con: Conn, anchor_id: int) -> None:
        """A product leaves a live session's set (its code keeps answering, as archived)."""
        await repo.archive(con, anchor_id)

    async def add_replay_anchors(self, con: Conn, video_id: int, publisher_id: int,
                                 anchors: Sequence[NewVideoAnchor]) -> list[Anchor]:
        """The video anchors of a live's replay, all or none: the video's row is locked and the
        per-video limit applies to the whole batch. No thumbnail is cut (thumbnail_s = start_s)."""
        if not await repo.lock_video(con, video_id):
            raise field_error("video_id", "no active video of the session's owner has this id",
                              code="unknown_video")
        existing = await repo.count_active_for_video(con, video_id)
        if existing + len(anchors) > self.max_per_video:
            raise field_error("video_id", f"the replay needs {len(anchors)} anchors and the video "
                              f"has {existing}; a video may carry at most {self.max_per_video}",
                              code="too_many_anchors")
        return [await with_new_code(con, partial(
                    repo.insert_video_anchor, con, video_id=video_id, product_id=a.product_id,
                    publisher_id=publisher_id, plan_id=a.plan_id, start_s=a.start_s, end_s=a.end_s,
                    thumbnail_s=a.start_s))
                for a in anchors]

    async def _published(self, anchor: Anchor) -> None:
        """After commit: click resolvers drop the anchor, timelines drop the video (all instances)."""
        await self._changes.publish(Change("anchor", anchor.id))
        if anchor.video_id is not None:
            await self._changes.publish(Change("video", anchor.video_id))

    # ---- reading -----------------------------------------------------------------------

    async def list_for_owner(self, who: Principal, video_id: int, status: str | None) -> list[Anchor]:
        video = await self._videos.get(who, video_id)
        async with self._pool.acquire() as con:
            return await repo.list_for_video(con, video.id, status)

    async def list_for_video(self, video_id: int) -> list[Anchor]:
        """Active anchors of a video sorted by start (no ownership check)."""
        async with self._pool.acquire() as con:
            return await repo.list_for_video(con, video_id)

    async def by_code(self, code: str) -> Anchor | None:
        async with self._pool.acquire() as con:
            return await repo.get_by_code(con, code)

    async def timeline_source(self, video_id: int) -> TimelineSource | None:
        """The viewer data of a video (None when it does not exist or was deleted)."""
        video = await self._videos.public(video_id)
        if video is None:
            return None
        anchors = await self.list_for_video(video_id)
        products = {p.id: p for p in await self._catalog.products_by_ids(
            sorted({a.product_id for a in anchors}))}
        items = []
        for a in anchors:
            product = products.get(a.product_id)
            if product is None or not product.active or a.start_s is None or a.end_s is None:
                continue  # a delisted product is not offered to viewers
            items.append(TimelineItem(a.id, a.product_id, a.start_s, a.end_s, {
                "id": a.id, "code": a.code, "start_s": a.start_s, "end_s": a.end_s,
                "label": a.label, "position": a.position, "link": link(self.base_url, a.code),
                "thumbnail_url": thumbnail_url(self.base_url, a.thumbnail_path),
                "product": {"id": product.id, "title": product.title, "price": product.price,
                            "currency": product.currency, "image_url": product.image_url}}))
        return TimelineSource(video_id=video.id, duration_s=video.duration_s, items=items,
                              product_ids=frozenset(a.product_id for a in anchors),
                              anchor_ids=frozenset(a.id for a in anchors))

    async def qr_png(self, code: str, scale: int) -> bytes | None:
        """The PNG QR code of an anchor's link (any status: printed codes keep working); LRU-cached."""
        return await self._qr(code, scale, "png")

    async def qr_svg(self, code: str, scale: int) -> bytes | None:
        """The same QR code as SVG (vector: for print at any size); LRU-cached."""
        return await self._qr(code, scale, "svg")

    async def _qr(self, code: str, scale: int, kind: str) -> bytes | None:
        key = (code, scale, kind)
        png = self._qr_cache.get(key)
        if png is not None:
            return png
        if not CODE_PATTERN.match(code) or await self.by_code(code) is None:
            return None
        render = qr.render_png if kind == "png" else qr.render_svg
        png = await self._videos.workers.run(render, link(self.base_url, code), scale)
        self._qr_cache[key] = png
        while len(self._qr_cache) > QR_CACHE_ENTRIES:
            self._qr_cache.popitem(last=False)
        return png
