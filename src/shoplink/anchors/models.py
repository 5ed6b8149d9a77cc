from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class NewVideoAnchor:
    """One anchor of a batch made for another domain (a live session's replay)."""

    product_id: int
    plan_id: int | None
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Anchor:
    id: int
    code: str
    surface: str  # 'video' | 'live'
    video_id: int | None
    live_session_id: int | None
    product_id: int
    publisher_id: int
    plan_id: int | None
    start_s: float | None
    end_s: float | None
    thumbnail_s: float | None
    label: str | None
    position: dict[str, float] | None
    thumbnail_path: str | None  # file name under <media>/thumbnails/
    status: str
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None

    @property
    def active(self) -> bool:
        return self.status == "active"

    def to_json(self, base_url: str) -> dict[str, Any]:
        return {"id": self.id, "code": self.code, "surface": self.surface, "video_id": self.video_id,
                "live_session_id": self.live_session_id, "product_id": self.product_id,
                "publisher_id": self.publisher_id, "plan_id": self.plan_id,
                "start_s": self.start_s, "end_s": self.end_s, "thumbnail_s": self.thumbnail_s,
                "label": self.label, "position": self.position,
                "link": link(base_url, self.code),
                "thumbnail_url": thumbnail_url(base_url, self.thumbnail_path),
                "status": self.status, "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat(),
                "archived_at": self.archived_at.isoformat() if self.archived_at else None}


def link(base_url: str, code: str) -> str:
    return f"{base_url}/r/{code}"


def thumbnail_url(base_url: str, name: str | None) -> str | None:
    return f"{base_url}/media/thumbnails/{name}" if name else None
