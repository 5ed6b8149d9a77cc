"""RFC 3339 date-times as the contract promises them (`format: date-time`): found by schemathesis,
whose date-times Python's own parser refused (lowercase t and z, leap seconds, far offsets)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shoplink.times import parse_datetime, parse_utc


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-01-02T03:04:05Z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ("2026-01-02t03:04:05z", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ("2026-01-02 03:04:05+00:00", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ("2016-12-31T23:59:60Z", datetime(2017, 1, 1, tzinfo=UTC)),
    ("2016-12-31T23:59:60.5+00:00", datetime(2017, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)),
    ("2026-01-02T03:04:05.123456789-01:30", datetime(2026, 1, 2, 3, 4, 5, 123456,
                                                    tzinfo=timezone(-timedelta(hours=1, minutes=30)))),
])
def test_rfc3339_date_times(text: str, expected: datetime) -> None:
    assert parse_datetime(text) == expected


def test_no_zone_is_naive_and_utc_when_asked() -> None:
    assert parse_datetime("2026-01-02T03:04:05").tzinfo is None
    assert parse_utc("2026-01-02T03:04:05") == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.mark.parametrize("text", ["yesterday", "2026-13-01T00:00:00Z", "2026-01-01T24:00:61Z",
                                  "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_utc(text)
