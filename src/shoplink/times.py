"""RFC 3339 date-times as clients send them (the `format: date-time` of the API contract).

Python's `datetime.fromisoformat` refuses some of what RFC 3339 allows (a lowercase `t` or `z`,
a leap second `:60`) and its results may not convert to UTC (year 1 at +14:00): one parser for
every date-time the API reads, so that what the contract calls valid is taken everywhere.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_LEAP_SECOND = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:)60(?=$|[.+Z-])")


def parse_datetime(raw: str) -> datetime:
    """An ISO 8601 / RFC 3339 date-time: aware when the text carries a zone, naive otherwise.

    A leap second (`23:59:60`) reads as the first instant of the next minute. Raises ValueError
    for anything else, and for a time that has no UTC equivalent within datetime's range."""
    text = raw.strip()
    if len(text) > 10 and text[10] in "tT ":
        text = f"{text[:10]}T{text[11:]}"
    if text.endswith(("z", "Z")):
        text = text[:-1] + "+00:00"
    leap = _LEAP_SECOND.match(text)
    if leap:
        text = f"{leap.group(1)}59{text[leap.end():]}"
    value = datetime.fromisoformat(text)
    try:
        if leap:
            value += timedelta(seconds=1)
        if value.tzinfo is not None:
            value.astimezone(UTC)  # representable in UTC
    except OverflowError:
        raise ValueError(f"{raw!r} is out of range") from None
    return value


def parse_utc(raw: str) -> datetime:
    """`parse_datetime`, in UTC; a date-time without a zone is taken as UTC."""
    value = parse_datetime(raw)
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
