"""The fast check of POST /v1/events bodies gives the JSON Schema's answer on every case."""

from __future__ import annotations

from typing import Any

import pytest

from shoplink.errors import BadRequest, ValidationFailed
from shoplink.funnel.validate import checked, events_of, schema_validator

GOOD: list[dict[str, Any]] = [
    {"type": "impression", "code": "abc123"},
    {"type": "impression", "code": "x" * 64, "t": 0},
    {"type": "view", "video": 1, "t": 12.5},
    {"type": "view", "live": 9007199254740991},
    {"type": "view", "video": 5.0},
    {"type": "progress", "video": 3, "q": 25},
    {"type": "progress", "video": 3, "q": 100.0, "t": 10000000},
]
BAD: list[Any] = [
    {"type": "impression"}, {"type": "impression", "code": ""}, {"type": "impression", "code": "x" * 65},
    {"type": "impression", "code": 5}, {"type": "impression", "code": "a", "q": 25},
    {"type": "impression", "code": "a", "video": 1}, {"type": "impression", "code": "a", "t": -1},
    {"type": "impression", "code": "a", "t": None}, {"type": "impression", "code": "a", "t": True},
    {"type": "impression", "code": "a", "t": 10000001}, {"type": "impression", "code": "a", "extra": 1},
    {"type": "view"}, {"type": "view", "video": 1, "live": 2}, {"type": "view", "video": 0},
    {"type": "view", "video": -3}, {"type": "view", "video": "7"}, {"type": "view", "video": 1.5},
    {"type": "view", "video": True}, {"type": "view", "video": 9007199254740992},
    {"type": "view", "video": 1, "code": "a"}, {"type": "view", "live": 1, "q": 25},
    {"type": "progress", "video": 1}, {"type": "progress", "q": 25}, {"type": "progress", "video": 1, "q": 30},
    {"type": "progress", "live": 1, "q": 25}, {"type": "progress", "video": 1, "q": "25"},
    {"type": "progress", "video": 1, "q": 25.5}, {"type": "click", "code": "a"}, {"type": None},
    {"type": ["impression"], "code": "a"}, {"type": {"impression": 1}}, {"code": "a"}, {"type": 1},
    {}, [], "impression", None, 3,
]


def _schema_ok(doc: Any) -> bool:
    return bool(schema_validator().is_valid(doc))


@pytest.mark.parametrize("event", GOOD)
def test_good_events_pass_both(event: dict[str, Any]) -> None:
    doc = {"pv": "pv-12345678", "events": [event]}
    assert _schema_ok(doc)
    beacon = checked(doc)
    assert beacon is not None and beacon.events[0]["type"] == event["type"]
    assert all(type(v) is int for k, v in beacon.events[0].items() if k in ("video", "live", "q"))


@pytest.mark.parametrize("event", BAD)
@pytest.mark.parametrize("beside", [{"type": "view", "video": 1}, {"type": "impression", "code": "a"}])
def test_bad_events_fail_both(event: Any, beside: dict[str, Any]) -> None:
    doc = {"pv": "pv-12345678", "events": [beside, event]}
    assert not _schema_ok(doc)
    assert checked(doc) is None


@pytest.mark.parametrize("doc", [
    {"pv": "short", "events": [{"type": "view", "video": 1}]},
    {"pv": "p" * 65, "events": [{"type": "view", "video": 1}]},
    {"pv": "has space1", "events": [{"type": "view", "video": 1}]},
    {"pv": "pv-12345678", "events": []},
    {"pv": "pv-12345678", "events": [{"type": "view", "video": 1}] * 101},
    {"pv": "pv-12345678"}, {"events": [{"type": "view", "video": 1}]},
    {"pv": "pv-12345678", "events": [{"type": "view", "video": 1}], "more": 1},
    {"pv": 12345678, "events": [{"type": "view", "video": 1}]}, [], "x",
])
def test_bad_bodies_fail_both(doc: Any) -> None:
    assert not _schema_ok(doc)
    assert checked(doc) is None


def test_a_full_body_passes_both() -> None:
    doc = {"pv": "A_b-" + "9" * 60, "events": [{"type": "view", "video": 1}] * 100}
    assert _schema_ok(doc) and checked(doc) is not None


def test_errors_name_the_offending_fields() -> None:
    with pytest.raises(BadRequest):
        events_of(b"{not json")
    with pytest.raises(ValidationFailed) as caught:
        events_of(b'{"pv": "pv-12345678", "events": [{"type": "view", "video": 1}, {"type": "nope"}]}')
    assert caught.value.code == "invalid_events"
    assert any(d["field"].startswith("events/1") for d in caught.value.details)


@pytest.mark.parametrize("bad", [e for e in BAD if isinstance(e, dict) and e.get("type") == "impression"])
def test_all_impression_bodies_take_the_column_check_with_the_same_answer(bad: dict[str, Any]) -> None:
    good = [{"type": "impression", "code": f"c{i}", "t": i} for i in range(5)]
    assert checked({"pv": "pv-12345678", "events": good}) is not None
    doc = {"pv": "pv-12345678", "events": [*good, bad]}
    assert not _schema_ok(doc)
    assert checked(doc) is None
