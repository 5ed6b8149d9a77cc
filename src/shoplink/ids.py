"""Unique, time-ordered ids (ULID: 48-bit milliseconds + 80 random bits, Crockford base32).

Event ids sort by time as strings, carry no personal data, and are unique across processes,
which makes them the idempotency key of a click everywhere downstream.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Every pair of digits (10 bits): a ULID is 13 table lookups instead of 26 divmods (hot path).
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_last_ms = 0
_last_rand = 0


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def _digits(ms: int) -> str:
    p = _PAIRS
    return p[ms >> 40] + p[(ms >> 30) & 1023] + p[(ms >> 20) & 1023] + p[(ms >> 10) & 1023] + p[ms & 1023]


# Ids made in the same millisecond share their first 20 digits (time and the high random bits,
# which +1 rarely changes): keep them, so an id usually costs two table lookups.
_head_key = (-1, -1)
_head = ""
# The 80 random bits of a new millisecond come from os.urandom read 4,000 bytes at a time (one
# getrandom(2) call per 400 milliseconds with clicks, not one per millisecond). A forked child
# drops the block it inherited, so two processes never share random bits.
_RANDOM_BLOCK = 4000
_random = b""
_random_pos = 0


def _forget_random() -> None:
    global _random, _random_pos
    _random, _random_pos = b"", 0


os.register_at_fork(after_in_child=_forget_random)


def new_ulid(now_ms: int | None = None) -> str:
    """Monotonic within this process: ids made in the same millisecond still sort in order.

    An explicit `now_ms` (tests, back-dated events) is used as given and leaves the sequence
    alone; `new_ulid_and_ms` gives a current id together with the milliseconds it encodes.
    """
    if now_ms is not None:
        return _encode(now_ms, 10) + _encode(int.from_bytes(os.urandom(10), "big"), 16)
    return new_ulid_and_ms()[0]


def new_ulid_and_ms() -> tuple[str, int]:
    """A current, monotonic id and its millisecond timestamp (one clock read for both; one call
    on the click path)."""
    global _last_ms, _last_rand, _head_key, _head, _random, _random_pos
    ms = int(time.time() * 1000)
    if ms <= _last_ms:
        ms = _last_ms
        rand = (_last_rand + 1) & ((1 << 80) - 1)
    else:
        pos = _random_pos
        if pos >= len(_random):
            _random, pos = os.urandom(_RANDOM_BLOCK), 0
        _random_pos = pos + 10
        rand = int.from_bytes(_random[pos:pos + 10], "big")
    _last_ms, _last_rand = ms, rand
    p = _PAIRS
    high = rand >> 20
    if _head_key != (ms, high):
        _head_key = (ms, high)
        _head = (_digits(ms) + p[high >> 50] + p[(high >> 40) & 1023] + p[(high >> 30) & 1023]
                 + p[(high >> 20) & 1023] + p[(high >> 10) & 1023] + p[high & 1023])
    return _head + p[(rand >> 10) & 1023] + p[rand & 1023], ms
