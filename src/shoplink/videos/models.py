from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


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
                "codec": self.codec, "scene_cuts": self.scene_cuts, "status": self.status,
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
