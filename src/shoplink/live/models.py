"""Live sessions, their product set, pins and the events viewers receive."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

SCHEDULED, LIVE, ENDED = "scheduled", "live", "ended"
EVENT_TYPES = ("start", "pin", "unpin", "sold_out", "end")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def link_for(base_url: str, code: str) -> str:
    return f"{base_url}/r/{code}"


@dataclass(frozen=True)
class LiveSession:
    id: int
    owner_id: int
    title: str
    planned_start_at: datetime | None
    status: str
    started_at: datetime | None
    ended_at: datetime | None
    replay_video_id: int | None
    last_seq: int
    created_at: datetime
    updated_at: datetime
    stream_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "owner_id": self.owner_id, "title": self.title,
                "planned_start_at": _iso(self.planned_start_at), "status": self.status,
                "started_at": _iso(self.started_at), "ended_at": _iso(self.ended_at),
                "replay_video_id": self.replay_video_id, "stream_url": self.stream_url, "seq": self.last_seq,
                "created_at": _iso(self.created_at), "updated_at": _iso(self.updated_at)}


@dataclass(frozen=True)
class SetProduct:
    """A product in a session's set: its live anchor (public code) and the product itself."""

    anchor_id: int
    code: str
    product_id: int
    plan_id: int | None
    title: str
    price: str | None
    currency: str | None
    image_url: str | None
    product_status: str

    def to_json(self, base_url: str) -> dict[str, Any]:
        return {"product_id": self.product_id, "anchor_id": self.anchor_id, "code": self.code,
                "link": link_for(base_url, self.code), "plan_id": self.plan_id, "title": self.title,
                "price": self.price, "currency": self.currency, "image_url": self.image_url,
                "product_status": self.product_status}


@dataclass(frozen=True)
class Pin:
    """A pinned product as viewers see it (a snapshot taken when it was pinned)."""

    product_id: int
    code: str
    title: str
    price: str | None
    price_minor: int | None
    currency: str | None
    image_url: str | None
    pinned_offset_s: float
    sold_out: bool = False

    def snapshot(self) -> dict[str, Any]:
        """What is stored (event data, live_pins.product): everything but sold_out."""
        return {"product_id": self.product_id, "code": self.code, "title": self.title,
                "price": self.price, "price_minor": self.price_minor, "currency": self.currency,
                "image_url": self.image_url, "pinned_offset_s": self.pinned_offset_s}

    @classmethod
    def from_snapshot(cls, data: dict[str, Any], sold_out: bool = False) -> Pin:
        return cls(product_id=int(data["product_id"]), code=str(data["code"]), title=str(data["title"]),
                   price=data.get("price"), price_minor=data.get("price_minor"),
                   currency=data.get("currency"), image_url=data.get("image_url"),
                   pinned_offset_s=float(data["pinned_offset_s"]), sold_out=sold_out)

    def to_json(self, base_url: str) -> dict[str, Any]:
        return {**self.snapshot(), "link": link_for(base_url, self.code), "sold_out": self.sold_out}


@dataclass(frozen=True)
class LiveEvent:
    """One change of a session, numbered by the per-session sequence `seq` (the SSE id)."""

    session_id: int
    seq: int
    type: str  # start | pin | unpin | sold_out | end
    product_id: int | None
    offset_s: float
    at: datetime
    data: dict[str, Any] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        """For Redis pub/sub (instances rebuild the event from it)."""
        return {"s": self.session_id, "q": self.seq, "t": self.type, "p": self.product_id,
                "o": self.offset_s, "a": self.at.isoformat(), "d": self.data}

    @classmethod
    def from_wire(cls, msg: dict[str, Any]) -> LiveEvent:
        if msg["t"] not in EVENT_TYPES:
            raise ValueError(f"unknown event type {msg['t']!r}")
        return cls(session_id=int(msg["s"]), seq=int(msg["q"]), type=str(msg["t"]),
                   product_id=None if msg["p"] is None else int(msg["p"]), offset_s=float(msg["o"]),
                   at=datetime.fromisoformat(msg["a"]), data=dict(msg["d"]))

    def to_json(self, base_url: str) -> dict[str, Any]:
        """What viewers receive."""
        out: dict[str, Any] = {"seq": self.seq, "type": self.type, "offset_s": self.offset_s,
                               "at": self.at.isoformat()}
        if self.type == "pin":
            out["pin"] = Pin.from_snapshot(self.data).to_json(base_url)
        elif self.type == "unpin":
            out["product_id"] = self.product_id
        elif self.type == "sold_out":
            out["product_id"] = self.product_id
            out["sold_out"] = bool(self.data.get("sold_out"))
        elif self.type == "start":
            out["status"] = LIVE
            out["started_at"] = self.data.get("started_at")
        elif self.type == "end":
            out["status"] = ENDED
            out["ended_at"] = self.data.get("ended_at")
        return out

    def timeline_json(self) -> dict[str, Any]:
        """For the host: the stored pin timeline."""
        return {"seq": self.seq, "type": self.type, "product_id": self.product_id,
                "offset_s": self.offset_s, "at": self.at.isoformat(), "data": self.data}


@dataclass(frozen=True)
class LiveState:
    """What a viewer sees at sequence `seq`; rebuilt from PostgreSQL or advanced by events."""

    session_id: int
    title: str
    status: str
    planned_start_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    replay_video_id: int | None
    seq: int
    pins: tuple[Pin, ...] = ()
    stream_url: str | None = None

    def apply(self, event: LiveEvent) -> LiveState:
        """The state after `event` (which must be the next in sequence)."""
        pins = self.pins
        status, started, ended = self.status, self.started_at, self.ended_at
        if event.type == "pin":
            pins = (*tuple(p for p in pins if p.product_id != event.product_id),
                    Pin.from_snapshot(event.data))
        elif event.type == "unpin":
            pins = tuple(p for p in pins if p.product_id != event.product_id)
        elif event.type == "sold_out":
            flag = bool(event.data.get("sold_out"))
            pins = tuple(replace(p, sold_out=flag) if p.product_id == event.product_id else p
                         for p in pins)
        elif event.type == "start":
            status = LIVE
            started = datetime.fromisoformat(event.data["started_at"]) if event.data.get(
                "started_at") else event.at
        elif event.type == "end":
            status, pins = ENDED, ()
            ended = datetime.fromisoformat(event.data["ended_at"]) if event.data.get(
                "ended_at") else event.at
        return replace(self, seq=event.seq, pins=pins, status=status, started_at=started,
                       ended_at=ended)

    def to_json(self, base_url: str) -> dict[str, Any]:
        return {"id": self.session_id, "title": self.title, "status": self.status,
                "planned_start_at": _iso(self.planned_start_at), "started_at": _iso(self.started_at),
                "ended_at": _iso(self.ended_at), "replay_video_id": self.replay_video_id,
                "stream_url": self.stream_url, "seq": self.seq, "pins": [p.to_json(base_url) for p in self.pins]}


@dataclass(frozen=True)
class ReplayRange:
    product_id: int
    start_s: float
    end_s: float


def replay_ranges(events: list[LiveEvent], *, live_duration_s: float, offset_s: float,
                  video_duration_s: float) -> list[ReplayRange]:
    """Pin → unpin (or the live's end) intervals mapped onto the replay video's time axis.

    A moment `t` seconds after the live started is at `t - offset_s` in the recording (the
    recording may have started late). Ranges are clipped to [0, duration]; empty ones dropped.
    """
    open_at: dict[int, float] = {}
    raw: list[tuple[int, float, float]] = []
    end_offset = live_duration_s
    for event in sorted(events, key=lambda e: e.seq):
        if event.type == "pin" and event.product_id is not None:
            open_at.setdefault(event.product_id, event.offset_s)
        elif event.type == "unpin" and event.product_id in open_at:
            raw.append((event.product_id, open_at.pop(event.product_id), event.offset_s))
        elif event.type == "end":
            end_offset = event.offset_s
            break
    raw.extend((pid, start, end_offset) for pid, start in open_at.items())
    out = []
    for pid, start, end in sorted(raw, key=lambda r: (r[1], r[2], r[0])):
        s = min(max(start - offset_s, 0.0), video_duration_s)
        e = min(max(end - offset_s, 0.0), video_duration_s)
        if e > s:
            out.append(ReplayRange(pid, round(s, 3), round(e, 3)))
    return [r for r in out if r.end_s > r.start_s]
