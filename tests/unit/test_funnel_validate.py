"""The beacon check gives the JSON Schema's answer on every case: msgspec's decoding (the fast
path) never takes what the schema refuses, and `events_of` takes exactly what the schema takes."""

from __future__ import annotations

from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from msgspec import UNSET

from shoplink.errors import BadRequest, ValidationFailed
from shoplink.funnel.validate import Beacon, Impression, Progress, View, decoded, events_of, schema_validator

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


def _taken(doc: Any) -> bool:
    """Whether `events_of` takes the document (it raises the 400/422 otherwise)."""
    try:
        events_of(orjson.dumps(doc))
    except (BadRequest, ValidationFailed):
        return False
    return True


@pytest.mark.parametrize("event", GOOD)
def test_good_events_pass_both(event: dict[str, Any]) -> None:
    doc = {"pv": "pv-12345678", "events": [event]}
    assert _schema_ok(doc)
    beacon = events_of(orjson.dumps(doc))
    ev = beacon.events[0]
    assert {Impression: "impression", View: "view", Progress: "progress"}[type(ev)] == event["type"]
    for name in ("video", "live", "q"):
        value = getattr(ev, name, UNSET)
        assert value is UNSET or type(value) is int
    if "t" in event:
        assert ev.t == event["t"]


def test_the_player_s_usual_beacon_takes_the_fast_path() -> None:
    body = orjson.dumps({"pv": "pv-12345678", "events": [
        {"type": "impression", "code": "abc123", "t": 1.5}, {"type": "view", "video": 7, "t": 0},
        {"type": "progress", "video": 7, "q": 50, "t": 31}, {"type": "view", "live": 3}]})
    beacon = decoded(body)
    assert beacon is not None and beacon.pv == "pv-12345678"
    assert [type(e) for e in beacon.events] == [Impression, View, Progress, View]
    assert beacon.events[0] == Impression(code="abc123", t=1.5)
    assert beacon.events[3] == View(live=3)


@pytest.mark.parametrize("event", BAD)
@pytest.mark.parametrize("beside", [{"type": "view", "video": 1}, {"type": "impression", "code": "a"}])
def test_bad_events_fail_both(event: Any, beside: dict[str, Any]) -> None:
    doc = {"pv": "pv-12345678", "events": [beside, event]}
    assert not _schema_ok(doc)
    assert decoded(orjson.dumps(doc)) is None
    assert not _taken(doc)


@pytest.mark.parametrize("doc", [
    {"pv": "short", "events": [{"type": "view", "video": 1}]},
    {"pv": "p" * 65, "events": [{"type": "view", "video": 1}]},
    {"pv": "has space1", "events": [{"type": "view", "video": 1}]},
    {"pv": "pv-12345678\n", "events": [{"type": "view", "video": 1}]},
    {"pv": "pv-12345678", "events": []},
    {"pv": "pv-12345678", "events": [{"type": "view", "video": 1}] * 101},
    {"pv": "pv-12345678"}, {"events": [{"type": "view", "video": 1}]},
    {"pv": "pv-12345678", "events": [{"type": "view", "video": 1}], "more": 1},
    {"pv": 12345678, "events": [{"type": "view", "video": 1}]}, [], "x", None, 5,
])
def test_bad_bodies_fail_both(doc: Any) -> None:
    assert not _schema_ok(doc)
    assert decoded(orjson.dumps(doc)) is None
    assert not _taken(doc)


def test_a_full_body_passes_both() -> None:
    doc = {"pv": "A_b-" + "9" * 60, "events": [{"type": "view", "video": 1}] * 100}
    assert _schema_ok(doc) and decoded(orjson.dumps(doc)) is not None


def test_integers_written_as_floats_are_taken_as_the_schema_takes_them() -> None:
    """msgspec's integers refuse 5.0; the schema's accept it: the slow path converts."""
    body = b'{"pv": "pv-12345678", "events": [{"type": "progress", "video": 5.0, "q": 1E2}]}'
    assert decoded(body) is None
    assert events_of(body).events == [Progress(video=5, q=100)]


@pytest.mark.parametrize("body", [b'{"pv": "pv-12345678", "events": [{"type": "impression", "code": "\\ud800"}]}',
                                  b"\xff", b"", b"{not json"])
def test_bodies_that_are_not_json_get_400(body: bytes) -> None:
    assert decoded(body) is None
    with pytest.raises(BadRequest):
        events_of(body)


def test_errors_name_the_offending_fields() -> None:
    with pytest.raises(ValidationFailed) as caught:
        events_of(b'{"pv": "pv-12345678", "events": [{"type": "view", "video": 1}, {"type": "nope"}]}')
    assert caught.value.code == "invalid_events"
    assert any(d["field"].startswith("events/1") for d in caught.value.details)


# ---- generated documents: near the schema's edges, in both directions -----------------------

_values = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 30), st.sampled_from([0, 1, 25, 50, 75, 100, 10_000_000, 10_000_001,
                                                                    9007199254740991, 9007199254740992]),
    st.floats(-1, 10_000_002, allow_nan=False), st.sampled_from([5.0, 25.0, 1.5, -0.0]),
    st.text(min_size=0, max_size=3), st.sampled_from(["x" * 64, "x" * 65, "abc123"]), st.just([1]), st.just({}))
_names = st.sampled_from(["type", "code", "t", "video", "live", "q", "extra"])
_types = st.sampled_from(["impression", "view", "progress", "click", ""])
_events = st.one_of(
    st.dictionaries(_names, _values, max_size=5).flatmap(
        lambda d: _types.map(lambda kind: {**d, "type": kind})),
    st.fixed_dictionaries({"type": st.just("impression"), "code": st.text(min_size=1, max_size=5)},
                          optional={"t": _values}),
    st.fixed_dictionaries({"type": st.just("view")}, optional={"video": _values, "live": _values, "t": _values}),
    st.fixed_dictionaries({"type": st.just("progress"), "video": _values, "q": _values}, optional={"t": _values}),
    _values)
_docs = st.fixed_dictionaries(
    {"pv": st.one_of(st.sampled_from(["pv-12345678", "short", "pv-12345678\n", "A" * 64, "A" * 65]), _values),
     "events": st.lists(_events, min_size=0, max_size=4)},
    optional={"more": _values})


def test_the_page_view_pattern_is_the_schema_s_and_means_the_same_in_python() -> None:
    """JSON Schema patterns are ECMA-262 regexes, where $ matches only at the very end; Python's
    re (jsonschema's validator, msgspec) also matches it before a final newline. The schema's
    pattern is written so that both give the same answer, and msgspec uses that pattern."""
    schema = schema_validator().schema
    assert isinstance(schema, dict)
    pattern = schema["properties"]["pv"]["pattern"]
    beacon = msgspec.inspect.type_info(Beacon)
    assert isinstance(beacon, msgspec.inspect.StructType)
    field = next(f.type for f in beacon.fields if f.name == "pv")
    assert isinstance(field, msgspec.inspect.StrType) and field.pattern == pattern
    for pv in ("pv-12345678\n", "pv-12345678\n\n", "\npv-12345678"):
        assert not _schema_ok({"pv": pv, "events": [{"type": "view", "video": 1}]})


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example({"pv": "pv-12345678\n", "events": [{"type": "impression", "code": "0"}]})  # found by this test
@given(_docs)
def test_generated_documents_get_the_schema_s_answer(doc: dict[str, Any]) -> None:
    valid = _schema_ok(doc)
    if decoded(orjson.dumps(doc)) is not None:
        assert valid, doc
    assert _taken(doc) == valid, doc
