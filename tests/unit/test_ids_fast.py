"""new_ulid's fast encoding gives exactly the digits of the reference (digit by digit) encoding."""

from __future__ import annotations

from shoplink import ids


def test_fast_ulid_matches_reference_encoding() -> None:
    for now_ms in (0, 1, 1_700_000_000_000, 2**48 - 1):
        value = ids.new_ulid(now_ms)
        assert ids.is_ulid(value) and ids.ulid_ms(value) == max(now_ms, ids._last_ms)
        assert value == ids._encode(ids._last_ms, 10) + ids._encode(ids._last_rand, 16)


def test_same_millisecond_ids_sort_in_order() -> None:
    made = [ids.new_ulid(1_800_000_000_000) for _ in range(1000)]
    assert made == sorted(made) and len(set(made)) == 1000


def test_carry_into_the_high_random_bits_is_encoded() -> None:
    ids.new_ulid(1_900_000_000_000)
    ids._last_rand = (1 << 20) - 1  # the next id carries into the cached high part
    value = ids.new_ulid(1_900_000_000_000)
    assert value == ids._encode(ids._last_ms, 10) + ids._encode(1 << 20, 16)
    assert ids.new_ulid(1_900_000_000_000) == ids._encode(ids._last_ms, 10) + ids._encode((1 << 20) + 1, 16)
