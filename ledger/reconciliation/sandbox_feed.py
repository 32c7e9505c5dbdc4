"""The sandbox gateway's settlement feed (our own format, one per UTC day) as `SettlementLine`s, or refused whole.

`GET /_sandbox/settlements/{YYYY-MM-DD}` answers it as `text/csv; charset=utf-8`, UTF-8, lines ending in "\\n":

    line_id,batch,type,payment_id,gateway_reference,refund_id,operation_reference,currency,gross_minor,fee_minor,net_minor,booked_at
    sbx:20261203:capture:sbx_pay_1a2b,sandbox-20261203-EUR,capture,pay_1,sbx_pay_1a2b,,,EUR,10000,140,9860,2026-12-03T10:00:00.123Z
    sbx:20261203:refund:sbx_mod_9f8e,sandbox-20261203-EUR,refund,pay_1,sbx_pay_1a2b,77,sbx_mod_9f8e,EUR,-2500,0,-2500,2026-12-03T11:00:00.000Z
    sbx:20261203:payout:EUR,sandbox-20261203-EUR,payout,,,,,EUR,-7360,0,-7360,2026-12-03T23:59:59.999Z
    # end lines=3

- `line_id`: unique and stable (`sbx:{YYYYMMDD}:{capture|refund|payout}:{gateway ref | refund's operation ref |
  currency}`): it is the line's key, so fetching the same day again imports nothing twice;
- `batch`: `sandbox-{YYYYMMDD}-{CURRENCY}`, one per currency and day;
- `type`: a `LineType` value (the sandbox writes capture, refund, payout); a capture's gross is > 0, a refund's < 0;
- `payment_id`: our payment id as the sandbox received it; `gateway_reference`: the sandbox's reference of the payment;
  `refund_id`: our refund id (empty for the saga's own whole-payment refund); `operation_reference`: the sandbox's
  reference of the refund; all empty where they do not apply (a payout);
- amounts: integers in minor units of `currency`, net_minor = gross_minor - fee_minor (a capture's fee is the
  sandbox's terms, `expected_fee_minor`); per currency a payout line pays out the day's nets: gross = net = -sum;
- `booked_at`: ISO 8601 in UTC with a `Z` (`2026-12-03T10:00:00.123Z`; 0 to 6 decimals of a second);
- the trailer `# end lines=N` (N data lines) is always the last line: a feed cut short has none, or a wrong N.
Columns are found by header name (extra columns are ignored).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from datetime import datetime
from typing import Final

from core.money import MINOR_UNIT_EXPONENT
from ledger.reconciliation.lines import LineType, SettlementFormatError, SettlementLine, SettlementSource, csv_row

__all__ = ["FEED_COLUMNS", "TRAILER_PREFIX", "parse_sandbox_feed"]

GATEWAY: Final = "sandbox"
FEED_COLUMNS: Final = (
    "line_id", "batch", "type", "payment_id", "gateway_reference", "refund_id", "operation_reference", "currency",
    "gross_minor", "fee_minor", "net_minor", "booked_at",
)
TRAILER_PREFIX: Final = "# end lines="

_TRAILER = re.compile(re.escape(TRAILER_PREFIX) + r"([0-9]+)", re.ASCII)
_INTEGER = re.compile(r"-?[0-9]+", re.ASCII)
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z", re.ASCII)
# The gross's sign each movement must have (payouts are checked by SettlementLine itself).
_SIGN = {LineType.CAPTURE: 1, LineType.CHARGEBACK_REVERSAL: 1, LineType.REFUND: -1, LineType.CHARGEBACK: -1}


def parse_sandbox_feed(data: bytes, name: str) -> SettlementSource:
    """The feed's lines, or a SettlementFormatError naming the first bad line and column."""
    body, trailer_line, expected = _split_trailer(data, name)
    reader = csv.reader(io.StringIO(body, newline=""), strict=True)
    try:
        header = [column.strip() for column in next(reader, [])]
        missing = [column for column in FEED_COLUMNS if column not in header]
        if missing:
            raise SettlementFormatError(name, 1, missing[0], "required column missing")
        lines: list[SettlementLine] = []
        seen: set[str] = set()
        line_number = reader.line_num + 1
        for fields in reader:
            line = _line(header, fields, line_number, name)
            if line.line_key in seen:
                raise SettlementFormatError(name, line_number, "line_id", f"a second line {line.line_key!r}")
            seen.add(line.line_key)
            lines.append(line)
            line_number = reader.line_num + 1
    except csv.Error as bad:
        raise SettlementFormatError(name, reader.line_num, None, f"not CSV: {bad}") from bad
    if len(lines) != expected:
        raise SettlementFormatError(
            name, trailer_line, None, f"the trailer says {expected} lines, the feed has {len(lines)}"
        )
    return SettlementSource(GATEWAY, name, hashlib.sha256(data).hexdigest(), tuple(lines))


def _split_trailer(data: bytes, name: str) -> tuple[str, int, int]:
    """(the CSV before the trailer, the trailer's line number, the count it states)."""
    if not data:
        raise SettlementFormatError(name, 1, None, "empty feed")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as bad:
        raise SettlementFormatError(name, data[: bad.start].count(b"\n") + 1, None, "not UTF-8") from bad
    last_line = text.count("\n") if text.endswith("\n") else text.count("\n") + 1
    body, _, trailer = text.removesuffix("\n").rpartition("\n")
    match = _TRAILER.fullmatch(trailer.removesuffix("\r"))
    if not text.endswith("\n") or match is None:
        raise SettlementFormatError(
            name, last_line, None, f"the last line is not the trailer '{TRAILER_PREFIX}N': the feed is truncated"
        )
    return body + "\n", last_line, int(match.group(1))


def _line(header: list[str], fields: list[str], line: int, name: str) -> SettlementLine:
    row = csv_row(header, fields, line=line, source=name)

    def text(column: str, *, required: bool = False) -> str:
        value = row[column]
        if required and not value:
            raise SettlementFormatError(name, line, column, "empty")
        return value

    def integer(column: str) -> int:
        value = row[column]
        if not _INTEGER.fullmatch(value):
            raise SettlementFormatError(name, line, column, f"not an integer amount in minor units: {value!r}")
        return int(value)

    try:
        line_type = LineType(text("type", required=True))
    except ValueError as bad:
        raise SettlementFormatError(name, line, "type", f"unknown type {row['type']!r}") from bad
    currency = text("currency", required=True)
    if currency not in MINOR_UNIT_EXPONENT:
        raise SettlementFormatError(name, line, "currency", f"unknown currency {currency!r}")
    gross, fee, net = integer("gross_minor"), integer("fee_minor"), integer("net_minor")
    if net != gross - fee:
        raise SettlementFormatError(name, line, "net_minor", f"net {net} != gross {gross} - fee {fee}")
    sign = _SIGN.get(line_type)
    if sign is not None and gross * sign <= 0:
        raise SettlementFormatError(name, line, "gross_minor", f"a {line_type.value} of {gross}: wrong sign")
    booked_at = text("booked_at", required=True)
    if not _TIMESTAMP.fullmatch(booked_at):
        raise SettlementFormatError(
            name, line, "booked_at", f"not a UTC timestamp like 2026-12-03T10:00:00.123Z: {booked_at!r}"
        )
    try:
        moment = datetime.fromisoformat(booked_at.removesuffix("Z") + "+00:00")
    except ValueError as bad:
        raise SettlementFormatError(name, line, "booked_at", f"not a date: {booked_at!r}") from bad
    line_key, batch = text("line_id", required=True), text("batch", required=True)
    try:
        return SettlementLine(
            line_number=line,
            line_key=line_key,
            batch_reference=batch,
            type=line_type,
            currency=currency,
            gross_minor=gross,
            fee_minor=fee,
            net_minor=net,
            booked_at=moment,
            payment_reference=text("payment_id") or None,
            gateway_reference=text("gateway_reference") or None,
            modification_reference=text("operation_reference") or None,
            operation_reference=text("refund_id") or None,
            raw=row,
        )
    except ValueError as bad:  # the line's own invariants (a payout taking money in)
        raise SettlementFormatError(name, line, "gross_minor", str(bad)) from bad
