"""Money in integer minor units with an ISO 4217 currency. Never floats."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

# Minor-unit exponents of ISO 4217 currencies; anything not listed here is rejected.
_EXPONENTS: dict[str, int] = {
    **dict.fromkeys([
        "AED", "ARS", "AUD", "BDT", "BGN", "BRL", "CAD", "CHF", "CNY", "COP", "CZK", "DKK", "EGP",
        "EUR", "GBP", "HKD", "HUF", "IDR", "ILS", "INR", "MAD", "MXN", "MYR", "NGN", "NOK", "NZD",
        "PEN", "PHP", "PKR", "PLN", "RON", "RUB", "SAR", "SEK", "SGD", "THB", "TRY", "TWD", "UAH",
        "USD", "ZAR",
    ], 2),
    **dict.fromkeys(["CLP", "ISK", "JPY", "KRW", "PYG", "UGX", "VND", "XAF", "XOF"], 0),
    **dict.fromkeys(["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"], 3),
}


class MoneyError(ValueError):
    pass


def currencies() -> frozenset[str]:
    """Every currency the service takes (the request schemas list the same: a test compares them)."""
    return frozenset(_EXPONENTS)


def is_currency(code: str) -> bool:
    return code in _EXPONENTS


def exponent(currency: str) -> int:
    try:
        return _EXPONENTS[currency]
    except KeyError:
        raise MoneyError(f"unknown ISO 4217 currency {currency!r}") from None


def to_minor(amount: str | int, currency: str) -> int:
    """'19.99' USD -> 1999. Refuses more decimals than the currency has, and negatives."""
    exp = exponent(currency)
    try:
        value = Decimal(str(amount).strip())
    except InvalidOperation:
        raise MoneyError(f"{amount!r} is not a decimal amount") from None
    if not value.is_finite() or value < 0:
        raise MoneyError("amount must be a finite, non-negative decimal")
    scaled = value.scaleb(exp)
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{currency} has {exp} decimal places; {amount} has more")
    return int(scaled)


def to_decimal_string(minor: int, currency: str) -> str:
    exp = exponent(currency)
    if exp == 0:
        return str(minor)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**exp)
    return f"{sign}{whole}.{frac:0{exp}d}"


def percentage_of(minor: int, rate_basis_points: int) -> int:
    """Commission on `minor` at a rate in basis points (12.50 % = 1250), rounded half-even."""
    exact = Decimal(minor) * Decimal(rate_basis_points) / Decimal(10_000)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
