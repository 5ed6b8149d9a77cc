"""Small test videos that headless Chromium can play.

Chromium cannot decode MPEG-4 Part 2 (OpenCV's `mp4v`), and OpenCV's wheels here have no H.264
encoder, but they do write VP8 in WebM (fourcc VP80), which Chromium plays. So browser tests use a
VP8 WebM: vertical 9:16, solid-colour scenes (hard cuts the scene detector finds), a frame counter.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

SCENE_COLOURS = ((40, 40, 200), (40, 170, 40), (200, 90, 30), (30, 160, 220))  # BGR


def make_webm(path: Path, *, scene_seconds: float = 2.0, scenes: int = 3, fps: int = 10,
              size: tuple[int, int] = (180, 320)) -> Path:
    """A VP8 WebM of `scenes` solid-colour shots of `scene_seconds` each; size is (width, height)."""
    width, height = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write VP8 WebM here")
    try:
        frames_per_scene = round(scene_seconds * fps)
        for scene in range(scenes):
            colour = SCENE_COLOURS[scene % len(SCENE_COLOURS)]
            for i in range(frames_per_scene):
                frame = np.full((height, width, 3), colour, np.uint8)
                cv2.putText(frame, f"scene {scene + 1}", (12, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.8,
                            (255, 255, 255), 2)
                cv2.putText(frame, f"{(scene * frames_per_scene + i) / fps:4.1f}s", (12, height // 2 + 34),
                            cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2)
                writer.write(frame)
    finally:
        writer.release()
    return path
