"""The player's events as the browser sends them (schemas/events/beacon.schema.json) and as they
are written to the event streams (schemas/events/stream_batch.schema.json)."""

from __future__ import annotations

from dataclasses import dataclass

BEACON_SCHEMA = "beacon.schema.json"
STREAM_SCHEMA = "stream_batch.schema.json"
STREAM_SCHEMA_VERSION = 1
TYPES = ("impression", "view", "progress")
QUARTILES = (25, 50, 75, 100)
MAX_EVENTS = 100  # per request
MAX_BODY_BYTES = 64 * 1024  # per request
MAX_CODE_LENGTH = 64
MAX_PLAYBACK_S = 10_000_000
DROP_REASONS = ("unknown", "repeat", "page_view_limit", "client_limit")


@dataclass(frozen=True)
class Surface:
    """A video or live session the player reports on (read from PostgreSQL, cached)."""

    kind: str  # video | live
    id: int
    owner_id: int
    duration_s: float | None  # videos
    started_s: float | None  # live sessions that have started
