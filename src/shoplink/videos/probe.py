"""Probe a video file with OpenCV: is it decodable, and what are its duration, rate and size?

Blocking (decodes frames): call it through `MediaWorkers.run`, never on the event loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import cv2

MAX_FPS = 1000.0
MAX_SIDE = 16384


class ProbeError(ValueError):
    """The file is not a video OpenCV can decode; the message says why, for the uploader."""


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
    """Fallback for containers that do not declare a frame count: decode (grab) them all."""
    cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
    count = 0
    while cap.grab():
        count += 1
    return count


def probe(path: Path) -> ProbeResult:
    """Open `path`, decode its first frame, and read its stream properties."""
    if not path.is_file() or path.stat().st_size == 0:
        raise ProbeError("the file is empty")
    cap = open_capture(path)
    try:
        if not cap.isOpened():
            raise ProbeError("the file is not a video that can be decoded")
        ok, frame = cap.read()
        if not ok or frame is None or frame.size == 0:
            raise ProbeError("no frame of the video can be decoded")
        fps = float(cap.get(cv2.CAP_PROP_FPS))
        if not (math.isfinite(fps) and 0 < fps <= MAX_FPS):
            raise ProbeError("the video has no usable frame rate")
        height, width = int(frame.shape[0]), int(frame.shape[1])
        if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
            raise ProbeError("the video's frame size is not supported")
        frame_count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if frame_count <= 0:
            frame_count = _count_frames(cap)
        if frame_count <= 0:
            raise ProbeError("the video has no frames")
        codec = fourcc_text(cap.get(cv2.CAP_PROP_FOURCC))
    finally:
        cap.release()
    return ProbeResult(duration_s=frame_count / fps, fps=fps, frame_count=frame_count,
                       width=width, height=height, codec=codec)
