from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Codecs every current browser plays in a <video> (as OpenCV's CAP_PROP_FOURCC names them, any case):
# H.264, VP8, VP9, AV1. Anything else (MPEG-4 Part 2 "FMP4"/"mp4v"/"XVID"/"DIVX", Motion JPEG, HEVC,
# which Chromium plays only with some hardware, Theora...) is accepted and flagged `playable: false`.
BROWSER_CODECS = frozenset({"avc1", "avc3", "h264", "x264", "vp80", "vp8", "vp90", "vp09", "vp9", "av01", "av1"})
CODEC_NAMES = {"fmp4": "MPEG-4 Part 2", "mp4v": "MPEG-4 Part 2", "xvid": "MPEG-4 Part 2 (Xvid)",
               "divx": "MPEG-4 Part 2 (DivX)", "dx50": "MPEG-4 Part 2 (DivX)", "mjpg": "Motion JPEG",
               "hevc": "HEVC (H.265)", "hev1": "HEVC (H.265)", "hvc1": "HEVC (H.265)", "h265": "HEVC (H.265)",
               "theo": "Theora", "wmv3": "Windows Media Video", "mpg2": "MPEG-2"}


def browser_playable(codec: str) -> bool:
    return codec.strip().lower() in BROWSER_CODECS


def playback_warning(codec: str) -> str | None:
    """What the uploader must know when browsers cannot play the codec; None when they can."""
    if browser_playable(codec):
        return None
    name = CODEC_NAMES.get(codec.strip().lower(), "an unusual codec")
    return (f"Browsers cannot play this video: it is encoded with {name} (\"{codec}\"), so viewers would see "
            "a blank player. Re-encode it as H.264 in MP4, or VP8/VP9 in WebM, and upload it again.")


@dataclass(frozen=True)
class Video:
    id: int
    owner_id: int
    title: str
    file_path: str
    original_filename: str | None
    source: str  # 'upload' (our file) | 'server_path' (registered; never deleted by us)
    size_bytes: int
    duration_s: float
    fps: float
    frame_count: int
    width: int
    height: int
    codec: str
    scene_cuts: list[float] | None
    status: str
    created_at: datetime
    updated_at: datetime

    @property
    def active(self) -> bool:
        return self.status == "active"

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "owner_id": self.owner_id, "title": self.title,
                "original_filename": self.original_filename, "source": self.source,
                "size_bytes": self.size_bytes, "duration_s": self.duration_s, "fps": self.fps,
                "frame_count": self.frame_count, "width": self.width, "height": self.height,
                "codec": self.codec, "playable": browser_playable(self.codec),
                "playback_warning": playback_warning(self.codec), "scene_cuts": self.scene_cuts, "status": self.status,
                "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat()}


@dataclass(frozen=True)
class NewVideo:
    owner_id: int
    title: str
    file_path: str
    original_filename: str | None
    source: str
    size_bytes: int
    duration_s: float
    fps: float
    frame_count: int
    width: int
    height: int
    codec: str
