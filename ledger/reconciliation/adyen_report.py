"""Adyen's Settlement details report (one CSV per payout batch) as `SettlementLine`s, or refused whole.

The report is a header line, then one line per entry. Columns are found by their header name, so extra or reordered
columns are fine; a column paysaga reads that is missing refuses the file. Amounts are decimal strings in MAJOR units
of the line's currency ("100.00", "1000" in JPY, "1.250" in KWD), empty where not applicable.

Type -> line:
- Settled, ChargebackReversed: credits. gross = Gross Credit (GC), net = Net Credit (NC);
- Refunded, Chargeback, SecondChargeback: debits. gross = -Gross Debit (GC), net = -Net Debit (NC);
  for both, fee = gross - net, and the fee columns (Commission + Markup + Scheme Fees + Interchange, NC) must say the
  same; Gross Currency must equal Net Currency (paysaga does not settle across currencies);
- Fee, MiscCosts, PaymentCost, InvoiceDeduction: a fee of the batch. gross 0, fee = Net Debit (NC) (or -Net Credit);
- MerchantPayout: the batch paid out. gross = net = -Net Debit (NC);
- anything else (RefundedReversed, Balancetransfer, DepositCorrection, ...) refuses the file: a movement paysaga
  cannot account for must be looked at by a person, not skipped.

Every batch must have its MerchantPayout line: a report without it was cut short (Adyen writes the payout last).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Final

from core.money import MINOR_UNIT_EXPONENT
from ledger.reconciliation.lines import (
    LineType,
    SettlementFormatError,
    SettlementLine,
    SettlementSource,
    csv_row,
    parse_minor,
)

__all__ = ["ADYEN_TIMEZONES", "ADYEN_TYPES", "REQUIRED_COLUMNS", "parse_adyen_settlement_report"]

GATEWAY: Final = "adyen"

MERCHANT_ACCOUNT = "Merchant Account"
PSP_REFERENCE = "Psp Reference"
MERCHANT_REFERENCE = "Merchant Reference"
CREATION_DATE = "Creation Date"
TIMEZONE = "TimeZone"
TYPE = "Type"
MODIFICATION_REFERENCE = "Modification Reference"
GROSS_CURRENCY = "Gross Currency"
GROSS_DEBIT = "Gross Debit (GC)"
GROSS_CREDIT = "Gross Credit (GC)"
NET_CURRENCY = "Net Currency"
NET_DEBIT = "Net Debit (NC)"
NET_CREDIT = "Net Credit (NC)"
COMMISSION = "Commission (NC)"
FEE_COLUMNS: Final = (COMMISSION, "Markup (NC)", "Scheme Fees (NC)", "Interchange (NC)")
MODIFICATION_MERCHANT_REFERENCE = "Modification Merchant Reference"
BATCH_NUMBER = "Batch Number"

# What paysaga reads; the report's other columns (Company Account, Payment Method, Exchange Rate, ...) may be absent.
REQUIRED_COLUMNS: Final = (
    MERCHANT_ACCOUNT, PSP_REFERENCE, MERCHANT_REFERENCE, CREATION_DATE, TIMEZONE, TYPE, MODIFICATION_REFERENCE,
    GROSS_CURRENCY, GROSS_DEBIT, GROSS_CREDIT, NET_CURRENCY, NET_DEBIT, NET_CREDIT, *FEE_COLUMNS,
    MODIFICATION_MERCHANT_REFERENCE, BATCH_NUMBER,
)

_CREDITS = {"Settled": LineType.CAPTURE, "ChargebackReversed": LineType.CHARGEBACK_REVERSAL}
_DEBITS = {"Refunded": LineType.REFUND, "Chargeback": LineType.CHARGEBACK, "SecondChargeback": LineType.CHARGEBACK}
_FEES = frozenset({"Fee", "MiscCosts", "PaymentCost", "InvoiceDeduction"})
_PAYOUT = "MerchantPayout"
ADYEN_TYPES: Final = frozenset({*_CREDITS, *_DEBITS, *_FEES, _PAYOUT})

# The abbreviations a report's TimeZone column uses, as fixed offsets (hours). Ambiguous ones (IST, CST, BST) are
# left out on purpose: a wrong guess would shift a booking by hours, so they refuse the file instead.
ADYEN_TIMEZONES: Final[Mapping[str, timezone]] = {
    name: timezone(timedelta(hours=hours), name)
    for name, hours in {
        "UTC": 0, "GMT": 0, "WET": 0, "WEST": 1, "CET": 1, "CEST": 2, "EET": 2, "EEST": 3, "MSK": 3,
        "EST": -5, "EDT": -4, "MST": -7, "MDT": -6, "PST": -8, "PDT": -7, "HKT": 8, "SGT": 8, "JST": 9,
        "AEST": 10, "AEDT": 11,
    }.items()
}

_DATE = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", re.ASCII)


def parse_adyen_settlement_report(data: bytes, name: str) -> SettlementSource:
    """The report's lines, or a SettlementFormatError naming the first bad line and column: nothing of a bad report
    is imported."""
    text = _decode(data, name)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header = _header(reader, name)
    lines: list[SettlementLine] = []
    keys: set[str] = set()
    payouts: set[str] = set()
    batch_start: dict[str, int] = {}
    line_number = reader.line_num + 1
    try:
        for fields in reader:
            if fields:  # a blank line carries nothing
                line = _line(header, fields, line_number, name)
                if line.line_key in keys:
                    raise SettlementFormatError(
                        name, line_number, MODIFICATION_REFERENCE, f"a second line with key {line.line_key!r}"
                    )
                keys.add(line.line_key)
                batch_start.setdefault(line.batch_reference, line_number)
                if line.type is LineType.PAYOUT:
                    payouts.add(line.batch_reference)
                lines.append(line)
            line_number = reader.line_num + 1
    except csv.Error as bad:
        raise SettlementFormatError(name, reader.line_num, None, f"not CSV: {bad}") from bad
    for batch, first_line in batch_start.items():
        if batch not in payouts:
            raise SettlementFormatError(
                name, first_line, TYPE, f"batch {batch}: no MerchantPayout line: the report is incomplete"
            )
    if not lines:
        raise SettlementFormatError(name, 2, TYPE, "no MerchantPayout line: the report is incomplete")
    return SettlementSource(GATEWAY, name, hashlib.sha256(data).hexdigest(), tuple(lines))


def _decode(data: bytes, name: str) -> str:
    data = data.removeprefix(b"\xef\xbb\xbf")  # the BOM Excel and some exports put first
    if not data.strip():
        raise SettlementFormatError(name, 1, None, "empty file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as bad:
        line = data[: bad.start].count(b"\n") + 1
        raise SettlementFormatError(name, line, None, "not UTF-8") from bad
    if not text.endswith("\n"):
        # Adyen ends every line with a newline: a file without one was cut short mid-line.
        raise SettlementFormatError(name, text.count("\n") + 1, None, "no newline at the end: the file is truncated")
    return text


def _header(reader: Iterator[list[str]], name: str) -> list[str]:
    try:
        header = [column.strip() for column in next(reader)]
    except (StopIteration, csv.Error) as bad:
        raise SettlementFormatError(name, 1, None, "no header line") from bad
    for column in REQUIRED_COLUMNS:
        if column not in header:
            raise SettlementFormatError(name, 1, column, "required column missing")
    duplicated = sorted({column for column in header if header.count(column) > 1})
    if duplicated:
        raise SettlementFormatError(name, 1, duplicated[0], "column appears more than once")
    return header


def _line(header: list[str], fields: list[str], line: int, name: str) -> SettlementLine:
    row = csv_row(header, fields, line=line, source=name)

    def text(column: str, *, required: bool = False) -> str:
        value = row[column].strip()
        if required and not value:
            raise SettlementFormatError(name, line, column, "empty")
        return value

    def amount(column: str, currency: str, *, required: bool = False, unsigned: bool = True) -> int:
        value = text(column, required=required)
        minor = parse_minor(value, currency, source=name, line=line, column=column) if value else 0
        if unsigned and minor < 0:
            # Debit and credit columns say the direction; a sign on top would turn a refund into a capture.
            raise SettlementFormatError(name, line, column, f"negative amount {value!r} in a debit/credit column")
        return minor

    def currency_of(column: str) -> str:
        value = text(column, required=True)
        if value not in MINOR_UNIT_EXPONENT:
            raise SettlementFormatError(name, line, column, f"unknown currency {value!r}")
        return value

    kind = text(TYPE, required=True)
    if kind not in ADYEN_TYPES:
        raise SettlementFormatError(name, line, TYPE, f"{kind!r} is not supported by paysaga's reconciliation")
    merchant_account, batch = text(MERCHANT_ACCOUNT, required=True), text(BATCH_NUMBER, required=True)
    currency = currency_of(NET_CURRENCY)
    if kind in _CREDITS or kind in _DEBITS:
        if currency_of(GROSS_CURRENCY) != currency:
            raise SettlementFormatError(
                name, line, GROSS_CURRENCY,
                f"gross in {row[GROSS_CURRENCY]}, net in {currency}: FX settlement is not supported",
            )
        if kind in _CREDITS:
            line_type = _CREDITS[kind]
            gross = amount(GROSS_CREDIT, currency, required=True)
            net = amount(NET_CREDIT, currency, required=True)
        else:
            line_type = _DEBITS[kind]
            gross = -amount(GROSS_DEBIT, currency, required=True)
            net = -amount(NET_DEBIT, currency, required=True)
        fee = gross - net
        # Adyen's fee columns are positive costs on both sides; a debit's costs make its net debit larger.
        charged = sum(amount(column, currency, unsigned=False) for column in FEE_COLUMNS)
        if charged != fee:
            raise SettlementFormatError(
                name, line, COMMISSION, f"fees add up to {charged} minor units, but gross - net is {fee}"
            )
    elif kind in _FEES:
        line_type, gross = LineType.FEE, 0
        if text(NET_DEBIT):
            fee = amount(NET_DEBIT, currency)
        elif text(NET_CREDIT):
            fee = -amount(NET_CREDIT, currency)
        else:
            raise SettlementFormatError(name, line, NET_DEBIT, "a fee line with neither a net debit nor a net credit")
        net = -fee
    else:
        line_type, fee = LineType.PAYOUT, 0
        gross = net = -amount(NET_DEBIT, currency, required=True)
    modification = text(MODIFICATION_REFERENCE)
    booked_at = _booked_at(text(CREATION_DATE, required=True), text(TIMEZONE, required=True), line, name)
    try:
        return SettlementLine(
            line_number=line,
            line_key=f"adyen:{merchant_account}:{batch}:{kind}:{modification or f'line{line}'}",
            batch_reference=f"{merchant_account}:{batch}",
            type=line_type,
            currency=currency,
            gross_minor=gross,
            fee_minor=fee,
            net_minor=net,
            booked_at=booked_at,
            payment_reference=text(MERCHANT_REFERENCE) or None,
            gateway_reference=text(PSP_REFERENCE) or None,
            modification_reference=modification or None,
            operation_reference=text(MODIFICATION_MERCHANT_REFERENCE) or None,
            raw=row,
        )
    except ValueError as bad:  # the line's own invariants (SettlementLine.__post_init__)
        raise SettlementFormatError(name, line, None, str(bad)) from bad


def _booked_at(value: str, zone: str, line: int, name: str) -> datetime:
    tz = ADYEN_TIMEZONES.get(zone)
    if tz is None:
        raise SettlementFormatError(name, line, TIMEZONE, f"unknown time zone {zone!r}")
    if not _DATE.fullmatch(value):
        raise SettlementFormatError(name, line, CREATION_DATE, f"not a 'YYYY-MM-DD HH:MM:SS' date: {value!r}")
    try:
        return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=tz)
    except ValueError as bad:
        raise SettlementFormatError(name, line, CREATION_DATE, f"not a date: {value!r}") from bad
