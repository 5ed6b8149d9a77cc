"""Where media files live, and the bounded pool that runs OpenCV off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi"})
_EXT = re.compile(r"^\.[a-z0-9]{1,8}$")


class MediaWorkers:
    """OpenCV work in a few threads (OpenCV releases the GIL while decoding).

    At most `workers` jobs run and at most `workers * queue_factor` wait; callers beyond that
    wait on the semaphore in the event loop instead of piling up in the executor queue.
    """

    def __init__(self, workers: int, queue_factor: int = 4) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="media")
        self._slots = asyncio.Semaphore(workers * queue_factor)

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        async with self._slots:
            return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


class MediaStore:
    """Layout under SHOPLINK_MEDIA_DIR: videos/, videos/.incoming/ (partial uploads), thumbnails/."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.videos = self.root / "videos"
        self.incoming = self.videos / ".incoming"
        self.thumbnails = self.root / "thumbnails"

    def ensure(self) -> None:
        for directory in (self.videos, self.incoming, self.thumbnails):
            directory.mkdir(parents=True, exist_ok=True)

    def new_incoming(self) -> Path:
        return self.incoming / f"{secrets.token_hex(12)}.part"

    def final_path(self, original_filename: str | None) -> Path:
        ext = Path(original_filename or "").suffix.lower()
        if not _EXT.match(ext) or ext not in VIDEO_EXTENSIONS:
            ext = ".video"
        return self.videos / f"{secrets.token_hex(12)}{ext}"

    def owns(self, path: Path) -> bool:
        """Is `path` a file this store created (and may delete)?"""
        try:
            return path.resolve().is_relative_to(self.videos)
        except OSError:
            return False

    def thumbnail_path(self, name: str) -> Path:
        return self.thumbnails / name


def remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
