"""Money is an integer amount in minor units and an ISO 4217 currency code. Never a float."""

from __future__ import annotations

from typing import Final

# ISO 4217 codes this service accepts, with their minor-unit exponent (ISO 4217 "minor unit" column).
# A merchant further limits these to the currencies it is set up for.
MINOR_UNIT_EXPONENT: Final[dict[str, int]] = {
    "AED": 2, "AUD": 2, "BGN": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CLP": 0, "CNY": 2, "CZK": 2,
    "DKK": 2, "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2, "ISK": 0, "JOD": 3,
    "JPY": 0, "KRW": 0, "KWD": 3, "MXN": 2, "MYR": 2, "NOK": 2, "NZD": 2, "OMR": 3, "PHP": 2, "PLN": 2,
    "RON": 2, "SAR": 2, "SEK": 2, "SGD": 2, "THB": 2, "TND": 3, "TRY": 2, "TWD": 2, "UGX": 0, "USD": 2,
    "VND": 0, "XAF": 0, "XOF": 0, "ZAR": 2,
}

# Largest amount one payment may carry, whatever the merchant's own limit: far below 2**63 so sums of many
# payments in one account stay exact in BIGINT.
MAX_AMOUNT_MINOR: Final[int] = 100_000_000_000


def is_currency(code: str) -> bool:
    """A currency this service accepts (ISO 4217, upper case)."""
    return code in MINOR_UNIT_EXPONENT


def check_currency_code(currency: str) -> None:
    """ValueError naming the code unless it has the shape of an ISO 4217 code (three upper-case ASCII letters), as
    the database's CHECK constraints require. Which codes the API accepts is is_currency's question."""
    if len(currency) != 3 or not currency.isascii() or not currency.isupper() or not currency.isalpha():
        raise ValueError(f"currency must be an ISO 4217 code like 'EUR' (got {currency!r})")


def format_minor(amount_minor: int, currency: str) -> str:
    """'19.99 EUR' for (1999, 'EUR'): for people, never for arithmetic."""
    exponent = MINOR_UNIT_EXPONENT[currency]
    sign = "-" if amount_minor < 0 else ""
    whole, fraction = divmod(abs(amount_minor), 10**exponent)
    return f"{sign}{whole}.{fraction:0{exponent}d} {currency}" if exponent else f"{sign}{whole} {currency}"
