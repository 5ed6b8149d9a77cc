from __future__ import annotations

import pytest

from shoplink.ids import new_ulid
from shoplink.money import MoneyError, percentage_of, to_decimal_string, to_minor

from support.ulid import is_ulid, ulid_ms


@pytest.mark.parametrize(("amount", "currency", "minor"), [
    ("19.99", "USD", 1999), ("19.9", "EUR", 1990), ("20", "USD", 2000), (1500, "JPY", 1500),
    ("1.234", "KWD", 1234), ("0", "GBP", 0),
])
def test_to_minor(amount: str, currency: str, minor: int) -> None:
    assert to_minor(amount, currency) == minor
    assert to_minor(to_decimal_string(minor, currency), currency) == minor


@pytest.mark.parametrize(("amount", "currency"), [
    ("19.999", "USD"), ("1.5", "JPY"), ("-1", "USD"), ("NaN", "USD"), ("abc", "USD"), ("1", "XXX"),
    ("Infinity", "EUR"),
])
def test_to_minor_rejects(amount: str, currency: str) -> None:
    with pytest.raises(MoneyError):
        to_minor(amount, currency)


def test_commission_rounding_half_even() -> None:
    assert percentage_of(1999, 1250) == 250      # 249.875 -> 250
    assert percentage_of(10, 2500) == 2          # 2.5 -> 2 (half-even)
    assert percentage_of(30, 2500) == 8          # 7.5 -> 8
    assert percentage_of(333, 1000) == 33        # JPY 33.3 -> 33


def test_ulids_are_unique_sorted_and_carry_time() -> None:
    ids = [new_ulid() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(is_ulid(i) for i in ids)
    assert abs(ulid_ms(new_ulid(1_700_000_000_123)) - 1_700_000_000_123) == 0
