"""Probe a video file: is it a video we accept, within the limits, decodable, and what are its
duration, rate and size?

The container's headers are read and checked first (`shoplink.videos.container`, no frame
decoded): frame size (SHOPLINK_MAX_VIDEO_PIXELS), duration (SHOPLINK_MAX_VIDEO_DURATION_S) and a
plausible frame count. Only then does OpenCV open the file, and its own reading of the size is
checked again before the first frame is decoded; the decoded frame may not be larger than
declared (a header that lies about the size is refused).

Blocking (decodes a frame): call it through `MediaWorkers.run`, never on the event loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2

from shoplink.videos import container

MAX_FPS = 1000.0
MAX_SIDE = 16384


class ProbeError(ValueError):
    """The file is not a video we accept; the message says why, for the uploader, and `code`
    names the problem (`undecodable_video` unless more is known)."""

    def __init__(self, message: str, code: str = "undecodable_video") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ProbeLimits:
    max_pixels: int = 4096 * 2160  # per frame: DCI 4K
    max_duration_s: float = 4 * 3600.0


@dataclass(frozen=True)
class ProbeResult:
    duration_s: float
    fps: float
    frame_count: int
    width: int
    height: int
    codec: str


def fourcc_text(value: float) -> str:
    code = int(value)
    text = "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4))
    text = "".join(ch for ch in text if ch.isprintable()).strip()
    return text or "unknown"


def open_capture(path: Path) -> cv2.VideoCapture:
    return cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)


def _count_frames(cap: cv2.VideoCapture) -> int:
    """Fallback for files whose container and OpenCV declare no frame count: decode (grab) them
    all (the duration was bounded first)."""
    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
    count = 0
    while cap.grab():
        count += 1
    return count


def check_size(width: int, height: int, limits: ProbeLimits) -> None:
    if width <= 0 or height <= 0:
        raise ProbeError("the video does not declare its frame size", "bad_container")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > limits.max_pixels:
        raise ProbeError(f"the frames are {width}x{height} ({width * height:,} pixels); at most "
                         f"{limits.max_pixels:,} pixels per frame (e.g. 4096x2160) and {MAX_SIDE} per side "
                         "are accepted", "video_frame_too_large")


def _seconds(value: float) -> str:
    return f"{value:,.3f}".rstrip("0").rstrip(".") + " s"


def check_duration(duration_s: float, limits: ProbeLimits) -> None:
    if not math.isfinite(duration_s) or duration_s > limits.max_duration_s:
        shown = _seconds(duration_s) if math.isfinite(duration_s) else "forever"
        raise ProbeError(f"the video lasts {shown}; at most {_seconds(limits.max_duration_s)} are accepted",
                         "video_too_long")


def check_limits(info: container.ContainerInfo, limits: ProbeLimits) -> None:
    """The container's claims against the limits, before anything is decoded."""
    check_size(info.width, info.height, limits)
    check_duration(info.duration_s, limits)
    if info.frame_count and info.duration_s > 0 and info.frame_count / info.duration_s > MAX_FPS:
        raise ProbeError(f"the container claims {info.frame_count:,} frames in {info.duration_s:g} s, "
                         f"more than {MAX_FPS:g} frames per second", "implausible_video")


def probe(path: Path, limits: ProbeLimits | None = None) -> ProbeResult:
    """Check `path`'s container, then open it, decode its first frame and read its properties."""
    limits = limits or ProbeLimits()
    size = path.stat().st_size if path.is_file() else 0
    if size == 0:
        raise ProbeError("the file is empty", "empty_file")
    with path.open("rb") as handle:
        try:
            info = container.read(handle, size)
        except container.ContainerError as exc:
            raise ProbeError(str(exc), exc.code) from None
    check_limits(info, limits)
    cap = open_capture(path)
    try:
        if not cap.isOpened():
            raise ProbeError("the file is not a video that can be decoded")
        # What the decoder is about to allocate for, as OpenCV reads it (still nothing decoded).
        check_size(int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) or info.width,
                   int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) or info.height, limits)
        ok, frame = cap.read()
        if not ok or frame is None or frame.size == 0:
            raise ProbeError("no frame of the video can be decoded")
        height, width = int(frame.shape[0]), int(frame.shape[1])
        if width * height > info.width * info.height:  # rotation keeps the count; a lie does not
            raise ProbeError(f"the first frame is {width}x{height}, larger than the {info.width}x{info.height} "
                             "the container declares", "inconsistent_video")
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        if not (math.isfinite(fps) and 0 < fps <= MAX_FPS):
            raise ProbeError("the video has no usable frame rate")
        frame_count = info.frame_count or int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if frame_count <= 0:  # neither says: count them (bounded by the file's size)
            frame_count = _count_frames(cap)
        if frame_count <= 0:
            raise ProbeError("the video has no frames")
        check_duration(frame_count / fps, limits)
        codec = fourcc_text(cap.get(cv2.CAP_PROP_FOURCC))
    finally:
        cap.release()
    return ProbeResult(duration_s=frame_count / fps, fps=fps, frame_count=frame_count,
                       width=width, height=height, codec=codec)
