"""new_ulid's fast encoding gives exactly the digits of the reference (digit by digit) encoding."""

from __future__ import annotations

import os
import time

from shoplink import ids

from support.ulid import is_ulid, ulid_ms


def test_fast_ulid_matches_reference_encoding() -> None:
    for _ in range(200):
        value = ids.new_ulid()
        assert is_ulid(value)
        assert value == ids._encode(ids._last_ms, 10) + ids._encode(ids._last_rand, 16)


def test_back_dated_time_is_used_as_given_and_leaves_the_sequence_alone() -> None:
    ids.new_ulid()
    before = (ids._last_ms, ids._last_rand)
    for now_ms in (0, 1, 1_700_000_000_000, before[0] - 1, 2**48 - 1):
        value = ids.new_ulid(now_ms)
        assert is_ulid(value) and ulid_ms(value) == now_ms
    assert (ids._last_ms, ids._last_rand) == before


def test_same_millisecond_ids_sort_in_order() -> None:
    made = [ids.new_ulid() for _ in range(500)] + [ids.new_ulid_and_ms()[0] for _ in range(500)]
    value, ms = ids.new_ulid_and_ms()
    assert ulid_ms(value) == ms
    assert made == sorted(made) and len(set(made)) == 1000


def test_carry_into_the_high_random_bits_is_encoded() -> None:
    ids._last_ms = int(time.time() * 1000) + 50  # the next ids stay in this millisecond
    ids._last_rand = (1 << 20) - 1  # the next id carries into the cached high part
    value = ids.new_ulid()
    assert value == ids._encode(ids._last_ms, 10) + ids._encode(1 << 20, 16)
    assert ids.new_ulid() == ids._encode(ids._last_ms, 10) + ids._encode((1 << 20) + 1, 16)


def test_new_milliseconds_draw_fresh_random_bits_from_the_block() -> None:
    seen = set()
    for _ in range(450):  # crosses a 4,000-byte block (400 draws of 10 bytes)
        ids._last_ms = 0  # every id starts a new millisecond: fresh random bits
        ids.new_ulid()
        seen.add(ids._last_rand)
    assert len(seen) == 450


def test_a_forked_child_does_not_reuse_the_parents_random_block() -> None:
    ids._last_ms = 0
    ids.new_ulid()  # the parent holds a partly used block
    assert ids._random
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report whether its block was dropped, then leave at once
        os.write(write, b"1" if ids._random == b"" and ids._random_pos == 0 else b"0")
        os._exit(0)
    os.close(write)
    try:
        assert os.read(read, 1) == b"1"
    finally:
        os.close(read)
        os.waitpid(pid, 0)
