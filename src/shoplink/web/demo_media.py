"""Generated demo and test videos that browsers can play.

Chromium cannot decode MPEG-4 Part 2 (OpenCV's `mp4v`) and OpenCV's wheels here have no H.264
encoder, but they write VP8 in WebM (fourcc VP80), which Chromium and Firefox play. The clips are
vertical (9:16), made of solid-colour scenes (hard cuts for the scene detector) with a caption and
a running clock, so a screenshot shows which second is on screen.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

SCENE_COLOURS = ((40, 40, 200), (40, 170, 40), (200, 90, 30), (30, 160, 220))  # BGR


def make_webm(path: Path, *, scene_seconds: float = 2.0, scenes: int = 3, fps: int = 10,
              size: tuple[int, int] = (180, 320), captions: Sequence[str] = ()) -> Path:
    """Write a VP8 WebM of `scenes` shots of `scene_seconds` each; size is (width, height)."""
    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"VP80"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write VP8 WebM on this machine")
    scale = width / 180
    try:
        frames_per_scene = round(scene_seconds * fps)
        for scene in range(scenes):
            colour = SCENE_COLOURS[scene % len(SCENE_COLOURS)]
            caption = captions[scene] if scene < len(captions) else f"scene {scene + 1}"
            for i in range(frames_per_scene):
                frame = np.full((height, width, 3), colour, np.uint8)
                cv2.putText(frame, caption, (int(12 * scale), height // 2), cv2.FONT_HERSHEY_SIMPLEX,
                            0.8 * scale, (255, 255, 255), max(1, int(2 * scale)))
                clock = f"{(scene * frames_per_scene + i) / fps:4.1f}s"
                cv2.putText(frame, clock, (int(12 * scale), height // 2 + int(34 * scale)),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.7 * scale, (255, 255, 255), max(1, int(2 * scale)))
                writer.write(frame)
    finally:
        writer.release()
    return path
