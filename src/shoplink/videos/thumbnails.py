"""Thumbnails: the exact frame shown at a timestamp, as a content-addressed JPEG.

The frame at t seconds is frame floor(t * fps) (frame i is on screen during [i/fps, (i+1)/fps)).
OpenCV's FFmpeg reader seeks to the keyframe before the target and decodes forward, so setting
CAP_PROP_POS_FRAMES lands on that exact frame (tests check it with frame numbers drawn into
the video). The file name is a hash of the JPEG bytes: a different frame gets a different URL,
so thumbnails can be cached forever.

Blocking: call through `MediaWorkers.run`.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import secrets
from pathlib import Path

import cv2

from shoplink.videos.probe import open_capture

MAX_WIDTH = 640
JPEG_QUALITY = 88
NAME_PATTERN = re.compile(r"^[0-9a-f]{32}\.jpg$")


class ThumbnailError(RuntimeError):
    pass


def frame_at(seconds: float, fps: float, frame_count: int) -> int:
    """The index of the frame on screen at `seconds` (clamped to the video)."""
    index = math.floor(seconds * fps + 1e-6)
    return max(0, min(frame_count - 1, index))


def cut(video: Path, frame_index: int, out_dir: Path) -> str:
    """Write the JPEG of frame `frame_index` under `out_dir`; returns its file name."""
    cap = open_capture(video)
    try:
        if not cap.isOpened():
            raise ThumbnailError("the video file cannot be opened")
        if frame_index > 0:
            cap.set(cv2.CAP_PROP_POS_FRAMES, frame_index)
        ok, frame = cap.read()
    finally:
        cap.release()
    if not ok or frame is None:
        raise ThumbnailError(f"frame {frame_index} cannot be decoded")
    height, width = frame.shape[:2]
    if width > MAX_WIDTH:
        frame = cv2.resize(frame, (MAX_WIDTH, round(height * MAX_WIDTH / width)),
                           interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ThumbnailError("the frame cannot be encoded as JPEG")
    data = encoded.tobytes()
    name = hashlib.blake2b(data, digest_size=16).hexdigest() + ".jpg"
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / name
    if not target.exists():
        tmp = out_dir / f".{name}.{secrets.token_hex(4)}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, target)  # atomic: readers never see half a file
    return name
