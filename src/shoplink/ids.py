"""Unique, time-ordered ids (ULID: 48-bit milliseconds + 80 random bits, Crockford base32).

Event ids sort by time as strings, carry no personal data, and are unique across processes,
which makes them the idempotency key of a click everywhere downstream.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_last_ms = 0
_last_rand = 0


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_ulid(now_ms: int | None = None) -> str:
    """Monotonic within this process: ids made in the same millisecond still sort in order.

    An explicit `now_ms` (tests, back-dated events) is used as given.
    """
    global _last_ms, _last_rand
    if now_ms is not None:
        return _encode(now_ms, 10) + _encode(int.from_bytes(os.urandom(10), "big"), 16)
    ms = int(time.time() * 1000)
    if ms <= _last_ms:
        ms = _last_ms
        rand = (_last_rand + 1) & ((1 << 80) - 1)
    else:
        rand = int.from_bytes(os.urandom(10), "big")
    _last_ms, _last_rand = ms, rand
    return _encode(ms, 10) + _encode(rand, 16)


def ulid_ms(value: str) -> int:
    """The millisecond timestamp inside a ULID."""
    ms = 0
    for ch in value[:10]:
        ms = ms * 32 + _ALPHABET.index(ch)
    return ms


def is_ulid(value: str) -> bool:
    return len(value) == 26 and all(c in _ALPHABET for c in value) and value[0] in "01234567"
