"""Pure rules of the live domain: the replay's ranges and the viewer state machine."""

from __future__ import annotations

from datetime import UTC, datetime

from shoplink.live.models import LiveEvent, LiveState, replay_ranges

T0 = datetime(2030, 1, 1, tzinfo=UTC)


def _ev(seq: int, type_: str, product_id: int | None, offset: float, **data: object) -> LiveEvent:
    return LiveEvent(1, seq, type_, product_id, offset, T0, dict(data))


def _pin(seq: int, product_id: int, offset: float) -> LiveEvent:
    data = {"product_id": product_id, "code": f"code{product_id}", "title": f"P{product_id}",
            "price": "1.00", "price_minor": 100, "currency": "EUR", "image_url": None,
            "pinned_offset_s": offset}
    return LiveEvent(1, seq, "pin", product_id, offset, T0, data)


def test_ranges_follow_pins_and_close_at_the_end() -> None:
    events = [_ev(1, "start", None, 0), _pin(2, 7, 10), _pin(3, 8, 12), _ev(4, "unpin", 7, 30),
              _pin(5, 7, 40), _ev(6, "sold_out", 7, 45, sold_out=True), _ev(7, "end", None, 60)]
    ranges = replay_ranges(events, live_duration_s=60, offset_s=0, video_duration_s=1000)
    assert [(r.product_id, r.start_s, r.end_s) for r in ranges] == [
        (7, 10, 30), (8, 12, 60), (7, 40, 60)]


def test_ranges_are_clipped_and_empty_ones_dropped() -> None:
    events = [_pin(2, 1, 5), _ev(3, "unpin", 1, 8), _pin(4, 2, 9), _ev(5, "unpin", 2, 25),
              _pin(6, 3, 30), _ev(7, "end", None, 40)]
    ranges = replay_ranges(events, live_duration_s=40, offset_s=8, video_duration_s=20)
    # 1: 5–8 → -3–0: empty; 2: 9–25 → 1–17; 3: 30–40 → 22–32, beyond a 20 s video: dropped
    assert [(r.product_id, r.start_s, r.end_s) for r in ranges] == [(2, 1, 17)]


def test_open_pins_without_end_event_use_the_live_duration() -> None:
    ranges = replay_ranges([_pin(2, 1, 5)], live_duration_s=50, offset_s=0, video_duration_s=45)
    assert [(r.start_s, r.end_s) for r in ranges] == [(5, 45)]


def test_state_applies_events_in_order() -> None:
    state = LiveState(1, "t", "scheduled", None, None, None, None, 0)
    state = state.apply(_ev(1, "start", None, 0, started_at=T0.isoformat()))
    assert state.status == "live" and state.started_at == T0 and state.seq == 1
    state = state.apply(_pin(2, 5, 1)).apply(_pin(3, 6, 2))
    state = state.apply(_ev(4, "sold_out", 5, 3, sold_out=True))
    assert [(p.product_id, p.sold_out) for p in state.pins] == [(5, True), (6, False)]
    state = state.apply(_ev(5, "unpin", 5, 4))
    assert [p.product_id for p in state.pins] == [6]
    state = state.apply(_ev(6, "end", None, 5, ended_at=T0.isoformat()))
    assert state.status == "ended" and state.pins == () and state.seq == 6
    body = state.to_json("https://s.example")
    assert body["seq"] == 6 and body["pins"] == []


def test_wire_round_trip() -> None:
    event = _pin(9, 3, 1.5)
    assert LiveEvent.from_wire(event.to_wire()) == event
    pin = event.to_json("https://s.example")["pin"]
    assert pin["link"] == "https://s.example/r/code3" and pin["sold_out"] is False
