"""Real test videos made with OpenCV, and helpers to upload them and read frame numbers back.

Every frame carries its index as a row of black/white blocks (one bit per block) along the top
edge, large enough to survive mp4v compression, so a thumbnail's frame can be identified.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np

from support.api import Api, Reply
from support.domains import verified_shop

BITS = 10
BLOCK = 24
# BGR colours far apart in hue: each shot has its own.
SHOT_COLOURS = [(40, 160, 40), (200, 70, 50), (50, 60, 210), (40, 200, 230)]


@dataclass(frozen=True)
class GeneratedVideo:
    path: Path
    fps: float
    frame_count: int
    width: int
    height: int
    cut_frames: tuple[int, ...]

    @property
    def duration_s(self) -> float:
        return self.frame_count / self.fps

    @property
    def cut_seconds(self) -> list[float]:
        return [f / self.fps for f in self.cut_frames]


def _frame(index: int, shot: int, width: int, height: int, colour: Sequence[int]) -> np.ndarray:
    frame: np.ndarray = np.empty((height, width, 3), np.uint8)
    frame[:] = colour
    # A gentle vertical gradient so shots are not flat colour.
    shade = np.linspace(0.8, 1.1, height, dtype=np.float32)[:, None, None]
    frame = np.clip(frame.astype(np.float32) * shade, 0, 255).astype(np.uint8)
    # A moving object: a white-and-dark square sweeping across the frame quickly.
    size = height // 4
    x = (index * 9) % (width - size)
    y = height // 2 + int(20 * np.sin(index / 5))
    cv2.rectangle(frame, (x, y), (x + size, y + size), (245, 245, 245), -1)
    cv2.circle(frame, (x + size // 2, y + size // 2), size // 4, (30, 30, 30), -1)
    # The frame number, one bit per block.
    frame[:BLOCK + 4, : BITS * BLOCK + 4] = (128, 128, 128)
    for bit in range(BITS):
        value = 255 if (index >> bit) & 1 else 0
        frame[2:2 + BLOCK, 2 + bit * BLOCK: 2 + (bit + 1) * BLOCK] = value
    return frame


def make_video(path: Path, *, seconds: float = 4.0, fps: float = 25.0, width: int = 320,
               height: int = 240, cut_frames: Sequence[int] = (30, 70)) -> GeneratedVideo:
    """Write an mp4v video with hard cuts at `cut_frames` (first frame of each new shot)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (width, height))
    assert writer.isOpened()
    count = round(seconds * fps)
    try:
        for index in range(count):
            shot = sum(index >= c for c in cut_frames)
            writer.write(_frame(index, shot, width, height, SHOT_COLOURS[shot % len(SHOT_COLOURS)]))
    finally:
        writer.release()
    return GeneratedVideo(path, fps, count, width, height, tuple(cut_frames))


def frame_number(image: np.ndarray) -> int:
    """Read back the index drawn by `_frame` (works on decoded frames and thumbnails)."""
    scale = image.shape[1] / 320 if image.shape[1] != 320 else 1.0
    value = 0
    for bit in range(BITS):
        cx = int((2 + bit * BLOCK + BLOCK / 2) * scale)
        cy = int((2 + BLOCK / 2) * scale)
        r = max(2, int(BLOCK * scale / 4))
        if image[cy - r:cy + r, cx - r:cx + r].mean() > 127:
            value |= 1 << bit
    return value


def decode_image(data: bytes) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not an image"
    return image


def read_qr(image: np.ndarray) -> str:
    """The text of the QR code in `image`, as a phone would read it. OpenCV's ArUco-based
    detector: the classic `QRCodeDetector` misses ~2 % of valid symbols (7 of 400 random links
    on OpenCV 5.0, where this one read all 400), which made the QR tests flaky."""
    text, _, _ = cv2.QRCodeDetectorAruco().detectAndDecode(image)
    return str(text)


def form(data: bytes, filename: str = "clip.mp4", title: str | None = None) -> aiohttp.FormData:
    body = aiohttp.FormData()
    if title is not None:
        body.add_field("title", title)
    body.add_field("file", io.BytesIO(data), filename=filename, content_type="video/mp4")  # streamed
    return body


async def upload(api: Api, video: GeneratedVideo | bytes, *, filename: str = "clip.mp4",
                 title: str | None = None) -> Reply:
    data = video if isinstance(video, bytes) else video.path.read_bytes()
    return await api.post("/api/v1/videos", data=form(data, filename, title))


async def shop_with_products(seller: Api, count: int = 2,
                             domain: str = "shop.example") -> list[dict[str, Any]]:
    shop_id = (await verified_shop(seller, {"name": "Shop", "domains": [domain]}))["id"]
    products = []
    for n in range(count):
        reply = await seller.post(f"/api/v1/shops/{shop_id}/products",
                                  {"title": f"Product {n}", "url": f"https://{domain}/p/{n}",
                                   "price": f"{10 + n}.50", "currency": "EUR",
                                   "image_url": f"https://{domain}/img/{n}.jpg"})
        assert reply.status == 201, reply.body
        products.append(reply.body)
    return products


def media_files(root: Path) -> list[Path]:
    """Every file under the media directory (partial uploads included)."""
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
