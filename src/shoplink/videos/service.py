"""Video rules: uploads (streamed, size-limited, probed within limits), ownership, rename, delete,
scene cuts."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import asyncpg

from shoplink.auth import policy
from shoplink.auth.models import Principal
from shoplink.changes import Change, ChangeBus
from shoplink.db import Conn
from shoplink.errors import Conflict, Forbidden, NotFound, PayloadTooLarge, ValidationFailed, field_error
from shoplink.videos import probe as probing
from shoplink.videos import repository as repo
from shoplink.videos import scenes
from shoplink.videos.media import MediaStore, MediaWorkers, remove_quietly
from shoplink.videos.models import NewVideo, Video

log = logging.getLogger(__name__)

WRITE_BUFFER = 1024 * 1024
# Runs inside the delete transaction (e.g. anchors archive theirs); returns changes to publish.
DeleteHook = Callable[[Conn, int], Awaitable[list[Change]]]


def rejected(field: str, message: str, code: str) -> ValidationFailed:
    """A 422 about one field whose top-level error code is `code` (e.g. undecodable_video)."""
    error = field_error(field, message, code=code)
    error.code = code
    return error


@dataclass(frozen=True)
class Incoming:
    """An upload written to a temporary file, not yet probed."""

    path: Path
    size_bytes: int
    original_filename: str | None


class VideoService:
    def __init__(self, pool: asyncpg.Pool, store: MediaStore, workers: MediaWorkers,
                 changes: ChangeBus, *, max_upload_bytes: int, allow_server_paths: bool,
                 delete_hooks: Sequence[DeleteHook] = (), probe_limits: probing.ProbeLimits | None = None) -> None:
        """`delete_hooks`: what other domains do when a video is deleted, in its transaction;
        `probe_limits`: the largest frame and longest duration an upload may declare."""
        self._pool = pool
        self.probe_limits = probe_limits or probing.ProbeLimits()
        self.store = store
        self.workers = workers
        self._changes = changes
        self.max_upload_bytes = max_upload_bytes
        self.allow_server_paths = allow_server_paths
        self.delete_hooks = tuple(delete_hooks)
        self._scene_jobs: dict[int, asyncio.Future[list[float]]] = {}

    # ---- uploads -----------------------------------------------------------------------

    def require_publisher(self, who: Principal) -> None:
        policy.require(who, "media.publish")

    async def receive(self, chunks: AsyncIterator[bytes], original_filename: str | None) -> Incoming:
        """Stream `chunks` to a temporary file; 413 (and nothing kept) past the size limit."""
        path = self.store.new_incoming()
        await asyncio.to_thread(self.store.ensure)
        fd = await asyncio.to_thread(os.open, path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        size = 0
        buffer: list[bytes] = []
        buffered = 0
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > self.max_upload_bytes:
                    raise PayloadTooLarge(f"the video is larger than {self.max_upload_bytes} bytes",
                                          code="upload_too_large")
                buffer.append(chunk)
                buffered += len(chunk)
                if buffered >= WRITE_BUFFER:
                    await asyncio.to_thread(os.write, fd, b"".join(buffer))
                    buffer, buffered = [], 0
            if buffer:
                await asyncio.to_thread(os.write, fd, b"".join(buffer))
        except BaseException:
            os.close(fd)
            remove_quietly(path)
            raise
        os.close(fd)
        # Some clients percent-encode the name; keep only its last path component.
        base = unquote(original_filename or "").replace("\\", "/").rsplit("/", 1)[-1]
        name = "".join(ch for ch in base if ch.isprintable())[:255]
        return Incoming(path, size, name or None)

    def discard(self, incoming: Incoming | None) -> None:
        if incoming is not None:
            remove_quietly(incoming.path)

    async def _probe(self, path: Path, field: str) -> probing.ProbeResult:
        try:
            return await self.workers.run(probing.probe, path, self.probe_limits)
        except probing.ProbeError as exc:
            raise rejected(field, str(exc), exc.code) from None

    async def create_from_upload(self, who: Principal, incoming: Incoming, title: str | None) -> Video:
        """Probe the upload; keep it (moved under videos/) only if OpenCV can decode it."""
        self.require_publisher(who)
        final: Path | None = None
        try:
            if incoming.size_bytes == 0:
                raise rejected("file", "the file is empty", "empty_file")
            info = await self._probe(incoming.path, "file")
            final = self.store.final_path(incoming.original_filename)
            await asyncio.to_thread(os.replace, incoming.path, final)
            video = await self._insert(who, info, final, incoming.original_filename, "upload",
                                       incoming.size_bytes, title)
        except BaseException:
            remove_quietly(incoming.path)
            if final is not None:
                remove_quietly(final)
            raise
        return video

    async def register_path(self, who: Principal, raw_path: str, title: str | None) -> Video:
        """Register a file already on the server (only when SHOPLINK_ALLOW_SERVER_PATHS is on)."""
        self.require_publisher(who)
        if not self.allow_server_paths:
            raise Forbidden("registering videos by server path is disabled on this server",
                            code="server_paths_disabled")
        path = Path(raw_path)
        if not path.is_absolute():
            raise field_error("path", "must be an absolute path")
        try:
            path = path.resolve(strict=True)
            size = path.stat().st_size
        except (OSError, RuntimeError):
            raise rejected("path", "no such file on the server", "not_found") from None
        if not path.is_file():
            raise field_error("path", "not a regular file")
        if size == 0:
            raise rejected("path", "the file is empty", "empty_file")
        info = await self._probe(path, "path")
        return await self._insert(who, info, path, path.name, "server_path", size, title)

    async def _insert(self, who: Principal, info: probing.ProbeResult, path: Path,
                      original_filename: str | None, source: str, size: int,
                      title: str | None) -> Video:
        clean_title = (title or "").strip() or (original_filename or "").strip() or "Untitled video"
        new = NewVideo(owner_id=who.account_id, title=clean_title[:300], file_path=str(path),
                       original_filename=original_filename, source=source, size_bytes=size,
                       duration_s=info.duration_s, fps=info.fps, frame_count=info.frame_count,
                       width=info.width, height=info.height, codec=info.codec)
        async with self._pool.acquire() as con:
            video = await repo.insert_video(con, new)
        log.info("video stored", extra={"video_id": video.id, "source": source, "size": size,
                                        "duration_s": info.duration_s})
        await self._changes.publish(Change("video", video.id))
        return video

    # ---- reading and changing ----------------------------------------------------------

    async def get(self, who: Principal, video_id: int) -> Video:
        """The caller's video (admins: any); 404 for others' and deleted ones."""
        async with self._pool.acquire() as con:
            video = await repo.get_video(con, video_id)
        if video is None:
            raise NotFound("video not found")
        policy.require_owner(who, video.owner_id, "video")
        return video

    async def public(self, video_id: int) -> Video | None:
        """An active video, without ownership checks (viewer API, other domains)."""
        async with self._pool.acquire() as con:
            return await repo.get_video(con, video_id)

    async def list_videos(self, who: Principal, limit: int, after_id: int) -> list[Video]:
        owner = None if who.is_admin else who.account_id
        async with self._pool.acquire() as con:
            return await repo.list_videos(con, owner, limit, after_id)

    async def rename(self, who: Principal, video_id: int, title: str) -> Video:
        title = title.strip()
        if not title:
            raise field_error("title", "must not be blank")
        async with self._pool.acquire() as con, con.transaction():
            video = await repo.get_video(con, video_id, for_update=True)
            if video is None:
                raise NotFound("video not found")
            policy.require_owner(who, video.owner_id, "video")
            await repo.rename_video(con, video_id, title)
            updated = await repo.get_video(con, video_id)
        assert updated is not None
        await self._changes.publish(Change("video", video_id))
        return updated

    async def delete(self, who: Principal, video_id: int) -> None:
        """Mark deleted, archive its anchors (hooks, same transaction), then drop our file."""
        async with self._pool.acquire() as con, con.transaction():
            video = await repo.get_video(con, video_id, for_update=True)
            if video is None:
                raise NotFound("video not found")
            policy.require_owner(who, video.owner_id, "video")
            await repo.mark_deleted(con, video_id)
            changes = [Change("video", video_id)]
            for hook in self.delete_hooks:
                changes.extend(await hook(con, video_id))
        for change in changes:
            await self._changes.publish(change)
        path = Path(video.file_path)
        if video.source == "upload" and self.store.owns(path):
            await asyncio.to_thread(remove_quietly, path)
        log.info("video deleted", extra={"video_id": video_id})

    # ---- scene cuts --------------------------------------------------------------------

    async def scene_cuts(self, video: Video) -> list[float]:
        """Computed once per video (concurrent callers share one job) and kept in videos.scene_cuts."""
        if video.scene_cuts is not None:
            return video.scene_cuts
        job = self._scene_jobs.get(video.id)
        if job is None:
            job = asyncio.ensure_future(self._compute_cuts(video))
            self._scene_jobs[video.id] = job
            job.add_done_callback(lambda _: self._scene_jobs.pop(video.id, None))
        return await asyncio.shield(job)

    async def _compute_cuts(self, video: Video) -> list[float]:
        path = Path(video.file_path)
        try:
            found = await self.workers.run(scenes.detect, path, video.fps)
        except probing.ProbeError as exc:
            log.error("scene detection failed", extra={"video_id": video.id, "error": str(exc)})
            raise Conflict(f"the video file cannot be read: {exc}", code="video_file_unreadable") from None
        cuts = found.seconds
        async with self._pool.acquire() as con:
            await repo.store_scene_cuts(con, video.id, cuts)
        log.info("scene cuts computed", extra={"video_id": video.id, "cuts": len(cuts)})
        return cuts
