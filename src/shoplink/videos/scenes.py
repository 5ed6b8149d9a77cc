"""Hard scene cuts (shot changes) found with small HSV colour histograms.

Two passes keep it fast: every frame is `grab()`bed (decoded) but only every `step`-th one is
`retrieve()`d (converted), shrunk and histogrammed; where two samples differ by more than the
threshold, that short interval is decoded again frame by frame to place the cut exactly (the
first frame of the new shot). A moving object on a steady background barely moves the colour
histogram, so it does not look like a cut; a hard cut changes it at once.

Blocking: call through `MediaWorkers.run`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from shoplink.videos.probe import ProbeError, open_capture

SAMPLE_SIZE = (64, 36)  # (w, h) the frames are shrunk to before histogramming
HIST_BINS = [8, 4, 4]  # H, S, V
HIST_RANGES = [0, 180, 0, 256, 0, 256]
THRESHOLD = 0.35  # Bhattacharyya distance (0 = same colours, 1 = disjoint)
SAMPLES_PER_SECOND = 6.0


@dataclass(frozen=True)
class SceneCuts:
    frames: list[int]  # index of the first frame of each new shot
    fps: float

    @property
    def seconds(self) -> list[float]:
        return [round(f / self.fps, 6) for f in self.frames]


def histogram(frame: np.ndarray) -> np.ndarray:
    small = cv2.resize(frame, SAMPLE_SIZE, interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_BGR2HSV)
    hist = cv2.calcHist([hsv], [0, 1, 2], None, HIST_BINS, HIST_RANGES)
    cv2.normalize(hist, hist, alpha=1.0, norm_type=cv2.NORM_L1)
    return hist


def distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))


def _refine(cap: cv2.VideoCapture, first: int, last: int) -> int | None:
    """The frame in (first, last] that differs most from its predecessor, if it is a cut."""
    cap.set(cv2.CAP_PROP_POS_FRAMES, first)
    ok, frame = cap.read()
    if not ok:
        return None
    prev = histogram(frame)
    best, best_index = 0.0, None
    for index in range(first + 1, last + 1):
        ok, frame = cap.read()
        if not ok:
            break
        hist = histogram(frame)
        d = distance(prev, hist)
        if d > best:
            best, best_index = d, index
        prev = hist
    return best_index if best >= THRESHOLD else None


def detect(path: Path, fps: float, threshold: float = THRESHOLD) -> SceneCuts:
    """Scene cuts of the video at `path` (whose probed frame rate is `fps`)."""
    step = max(1, round(fps / SAMPLES_PER_SECOND))
    candidates: list[tuple[int, int]] = []
    cap = open_capture(path)
    try:
        if not cap.isOpened():
            raise ProbeError("the video file cannot be opened")
        prev: np.ndarray | None = None
        prev_index = 0
        index = -1
        while cap.grab():
            index += 1
            if index % step:
                continue
            ok, frame = cap.retrieve()
            if not ok:
                continue
            hist = histogram(frame)
            if prev is not None and distance(prev, hist) >= threshold:
                candidates.append((prev_index, index))
            prev, prev_index = hist, index
        last_frame = index
        if (prev is not None and last_frame > prev_index  # the tail after the last sample
                and _tail_differs(cap, prev, last_frame, threshold)):
            candidates.append((prev_index, last_frame))
        cuts = []
        for first, last in candidates:
            if last - first == 1:
                cuts.append(last)
                continue
            cut = _refine(cap, first, last)
            if cut is not None:
                cuts.append(cut)
    finally:
        cap.release()
    return SceneCuts(frames=sorted(set(cuts)), fps=fps)


def _tail_differs(cap: cv2.VideoCapture, prev: np.ndarray, last_frame: int, threshold: float) -> bool:
    cap.set(cv2.CAP_PROP_POS_FRAMES, last_frame)
    ok, frame = cap.read()
    return bool(ok) and distance(prev, histogram(frame)) >= threshold
