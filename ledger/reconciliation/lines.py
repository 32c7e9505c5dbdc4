"""What a gateway settled, in one shape whatever the gateway: the settlement line, and the error a bad source gets.

Every parser (Adyen's settlement detail report, Stripe's balance transactions, the sandbox's feed) turns its source
into `SettlementLine`s or refuses the whole source with a `SettlementFormatError` naming the line and the column:
nothing of a bad source is imported.

Signs are the gateway's balance's point of view, in minor units of `currency`:
- `gross_minor` > 0: the gateway owes us more (a capture, a chargeback reversed); < 0: it took money back (a refund,
  a chargeback) or paid it out (a payout);
- `fee_minor`: what the gateway charged on this line (> 0 a cost; < 0 a fee given back);
- `net_minor` = gross_minor - fee_minor: what the line adds to (or takes from) the gateway's balance of ours.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from core.money import MINOR_UNIT_EXPONENT

__all__ = ["MATCHED_TYPES", "LineType", "SettlementFormatError", "SettlementLine", "SettlementSource", "csv_row",
           "parse_minor"]


class LineType(enum.StrEnum):
    CAPTURE = "capture"  # a captured payment settled (Adyen Settled, Stripe charge/payment)
    REFUND = "refund"  # a refund taken from the balance (Adyen Refunded, Stripe refund/payment_refund)
    CHARGEBACK = "chargeback"  # a dispute's amount taken back (Adyen Chargeback, Stripe adjustment of a dispute)
    CHARGEBACK_REVERSAL = "chargeback_reversal"  # a won dispute's amount returned (Adyen ChargebackReversed)
    FEE = "fee"  # a fee not tied to one payment (Adyen Fee/MiscCosts, Stripe stripe_fee)
    PAYOUT = "payout"  # the balance paid out to the bank (Adyen MerchantPayout, Stripe payout): gross < 0


# The line types matched one by one against what the ledger expects; fees and payouts are checked per batch.
MATCHED_TYPES: frozenset[LineType] = frozenset(
    {LineType.CAPTURE, LineType.REFUND, LineType.CHARGEBACK, LineType.CHARGEBACK_REVERSAL}
)


class SettlementFormatError(ValueError):
    """A source refused whole. `line` is 1-based in the source (the header is line 1 of a CSV); `column` names the
    column or field."""

    def __init__(self, source: str, line: int, column: str | None, message: str) -> None:
        where = f"line {line}" + (f", column {column!r}" if column else "")
        super().__init__(f"{source}: {where}: {message}")
        self.source = source
        self.line = line
        self.column = column
        self.message = message


@dataclass(frozen=True, slots=True)
class SettlementLine:
    line_number: int  # 1-based position in the source (a CSV's line number; a list's position + 1)
    line_key: str  # unique per gateway and stable: importing the same line again is a no-op
    # Adyen's merchant account and batch number, Stripe's payout id (or "available:<CUR>:<YYYY-MM-DD>"), the sandbox's
    batch_reference: str
    type: LineType
    currency: str  # ISO 4217, upper case
    gross_minor: int
    fee_minor: int
    net_minor: int
    booked_at: datetime  # timezone-aware
    payment_reference: str | None = None  # our payment id as the gateway echoes it (merchant reference, metadata)
    gateway_reference: str | None = None  # the gateway's id of the payment (Adyen pspReference, Stripe pi_...)
    modification_reference: str | None = None  # the gateway's id of this movement (re_..., a modification psp)
    operation_reference: str | None = None  # our refund id as the gateway echoes it (Adyen modification merchant ref)
    raw: Mapping[str, object] = field(default_factory=dict)  # the source's row, as read (redacted of nothing secret)

    def __post_init__(self) -> None:
        if self.currency not in MINOR_UNIT_EXPONENT:
            raise ValueError(f"unknown currency {self.currency!r}")
        if self.net_minor != self.gross_minor - self.fee_minor:
            raise ValueError(f"net {self.net_minor} != gross {self.gross_minor} - fee {self.fee_minor}")
        if self.booked_at.tzinfo is None:
            raise ValueError("booked_at must be timezone-aware")
        if self.type == LineType.PAYOUT and self.gross_minor > 0:
            raise ValueError("a payout takes money out of the balance: gross_minor must be <= 0")


@dataclass(frozen=True, slots=True)
class SettlementSource:
    """One import: a file or one API listing. `content_sha256` identifies the content (a file's bytes; the API's
    objects canonically serialized), so importing it again is recognised."""

    gateway: str
    name: str  # the file's name, or e.g. "stripe balance transactions since 2026-12-01T00:00:00Z"
    content_sha256: str
    lines: tuple[SettlementLine, ...]


def parse_minor(text: str, currency: str, *, source: str, line: int, column: str) -> int:
    """'12.34' in EUR -> 1234; '1234' in JPY -> 1234; '1.234' in KWD -> 1234. A decimal string in major units with at
    most the currency's exponent of decimals (fewer are padded), an optional leading '-'; never a float. Anything else
    is a SettlementFormatError naming the line and the column."""
    exponent = MINOR_UNIT_EXPONENT.get(currency)
    if exponent is None:
        raise SettlementFormatError(source, line, column, f"unknown currency {currency!r}")
    value = text.strip()
    negative = value.startswith("-")
    digits = value[1:] if negative else value
    whole, dot, fraction = digits.partition(".")
    if not whole.isdigit() or not whole.isascii() or (dot and not (fraction.isdigit() and fraction.isascii())):
        raise SettlementFormatError(source, line, column, f"not an amount: {text!r}")
    if len(fraction) > exponent:
        raise SettlementFormatError(
            source, line, column, f"{text!r} has {len(fraction)} decimals; {currency} has {exponent}"
        )
    minor: int = int(whole) * 10**exponent + (int(fraction.ljust(exponent, "0")) if exponent else 0)
    return -minor if negative else minor


def csv_row(header: list[str], fields: list[str], *, line: int, source: str) -> dict[str, str]:
    """A CSV line's fields by column, or a SettlementFormatError when it has not as many as the header (a line cut
    short by a truncated file, or garbled)."""
    if len(fields) != len(header):
        raise SettlementFormatError(
            source, line, None, f"{len(fields)} fields where the header has {len(header)}: a truncated or garbled line"
        )
    return dict(zip(header, fields, strict=True))
