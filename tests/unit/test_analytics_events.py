"""Event parsing (batch and one by one), plan building and encoding, key slots."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from redis.crc import key_slot

from shoplink.analytics import keys as k
from shoplink.analytics.apply import build_plan, unique_by_id
from shoplink.analytics.events import Malformed, parse, parse_batch
from shoplink.resp import pack, pack_ids

from support.event_data import event, viewer


def payload(**changes: Any) -> bytes:
    return orjson.dumps(event(ts_ms=1_800_000_000_000, **changes))


def broken(**changes: Any) -> bytes:
    """A schema-valid event, then changed into what a buggy or foreign producer might write."""
    return orjson.dumps({**event(ts_ms=1_800_000_000_000), **changes})


def test_batch_and_single_parsing_agree() -> None:
    payloads = [payload(viewer_id=i, anchor_id=i, ua_class=c, outcome=o)
                for i, (c, o) in enumerate([("human", "redirected"), ("bot", "gone"),
                                            ("link_preview", "fallback"), ("human", "not_found")])]
    rows = parse_batch(payloads)
    assert rows is not None
    assert [tuple(r[:13]) for r in rows] == [tuple(parse(p)) for p in payloads]
    assert parse_batch([]) == []


@pytest.mark.parametrize(("raw", "reason"), [
    (b"{nope", "not_json"),
    (b"[1]", "not_an_object"),
    (orjson.dumps({"event_id": "x"}), "missing_field:schema_version"),
    (broken(schema_version=2), "unsupported_version:2"),
    (broken(ts_ms=1.5), "invalid_field:ts_ms"),
    (broken(viewer="short"), "invalid_field:viewer"),
    (broken(ua_class="robot"), "invalid_field:ua_class"),
    (broken(outcome="teleported"), "invalid_field:outcome"),
    (broken(anchor_id="7"), "invalid_field:anchor_id"),
    (broken(playback_s=-1), "invalid_field:playback_s"),
    (broken(event_id="not-a-ulid"), "invalid_field:event_id"),
    (broken(viewer="é" * 32), "invalid_field:viewer"),  # letters, but not ASCII
    (broken(viewer=12345678), "invalid_field:viewer"),
    (broken(anchor_id=-3), "invalid_field:anchor_id"),
    (broken(shop_id=True), "invalid_field:shop_id"),
    (None, "missing_payload"),
])
def test_malformed_events_are_named(raw: bytes | None, reason: str) -> None:
    with pytest.raises(Malformed) as exc:
        parse(raw)
    assert str(exc.value) == reason
    if raw is not None:  # one bad event sends the batch down the one-by-one path
        assert parse_batch([payload(), raw]) is None


def test_missing_optional_fields_are_accepted() -> None:
    doc = {k: v for k, v in orjson.loads(payload()).items() if k not in ("plan_id", "commission", "net")}
    ev = parse(orjson.dumps(doc))
    assert ev.plan is None and ev.anchor == 1
    assert parse_batch([orjson.dumps(doc)]) is None  # the fast path needs every id column; parse() copes


def test_plan_aggregates_and_packs_like_the_plain_encoding() -> None:
    base = 1_800_000_000_000
    docs = [event(ts_ms=base + i * 20_000, viewer_id=i % 3, anchor_id=5, ua_class=("human", "bot")[i % 2])
            for i in range(6)]
    events = [parse(orjson.dumps(d)) for d in docs]
    plan = build_plan(1, events, (60, 3600, 86400))
    minute = (base // 1000) - (base // 1000) % 60
    combo = ".a5.v10.l.p100.s1000.c7.n."  # the event's entity ids: all its counters derive from it
    assert k.combo_id((5, 10, None, 100, 1000, 7, None)) == combo
    assert k.combo_ids(combo) == (5, 10, None, 100, 1000, 7, None)
    assert k.combo_entities(combo) == [("anchor", 5), ("video", 10), ("product", 100), ("shop", 1000),
                                       ("creator", 7)]
    assert plan.hincr == {f"sla:{{1}}:c:{combo}": {f"{minute}:hr": 2, f"{minute}:br": 1,
                                                   f"{minute + 60}:hr": 1, f"{minute + 60}:br": 2},
                          "sla:{1}:hm:10": {"12": 3}}
    assert plan.pfadd == {f"sla:{{1}}:u:{combo}:{minute - minute % 86400}": {viewer(0), viewer(2), viewer(1)}}
    keys, args = plan.encode("sla", 100, 200)
    assert plan.packed("abc", "sla", 100, 200) == pack(["EVALSHA", "abc", len(keys), *keys, *args])
    # every key of one apply is in the slot of the shard's stream (Redis Cluster)
    assert {key_slot(key.encode()) for key in keys} == {key_slot(k.stream(1).encode())}
    assert unique_by_id([*events, events[0]]) == events


def test_ack_requests_pack_like_the_plain_encoding() -> None:
    same_width = [b"1800000000%03d-%d" % (i, i % 7) for i in range(50)]
    for ids in (same_width, [*same_width, b"1-0"], []):
        assert pack_ids(["XACK", k.stream(2), k.GROUP], ids) == pack(["XACK", k.stream(2), k.GROUP, *ids])
