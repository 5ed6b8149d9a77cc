"""Reading ULIDs back (shoplink.ids makes them; only the tests take them apart): the tests'
own decoder, written from the format (48-bit milliseconds + 80 random bits, Crockford base32)
rather than from the encoder it checks."""

from __future__ import annotations

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def is_ulid(value: str) -> bool:
    """26 Crockford base32 digits whose first one keeps the value within 128 bits."""
    return len(value) == 26 and all(c in CROCKFORD for c in value) and value[0] in "01234567"


def ulid_ms(value: str) -> int:
    """The millisecond timestamp inside a ULID (its first 10 digits)."""
    ms = 0
    for ch in value[:10]:
        ms = ms * 32 + CROCKFORD.index(ch)
    return ms
