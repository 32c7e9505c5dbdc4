"""The sandbox gateway's settlement feed: what it settled each UTC day, in the format `parse_sandbox_feed` reads (its
docstring defines it), and a client that fetches one day's feed.

The sandbox books a movement when it became final: a capture when it is `captured` (at once, or when a submitted
capture settles), a refund when it succeeded. Each is one row of `settlement_movements`, a table of its own (created
with `CREATE TABLE IF NOT EXISTS`) so a state file made before the feed existed keeps working.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from collections import defaultdict
from datetime import UTC, date, datetime

import httpx

from ledger.reconciliation.lines import LineType
from ledger.reconciliation.sandbox_feed import FEED_COLUMNS, TRAILER_PREFIX
from ledger.reconciliation.terms import DAY_MS, expected_fee_minor

__all__ = [
    "SETTLEMENT_SCHEMA",
    "SETTLEMENT_TABLE",
    "SandboxFeedError",
    "feed_csv",
    "fetch_sandbox_feed",
    "parse_day",
    "record_capture",
    "record_refund",
]

SETTLEMENT_TABLE = "settlement_movements"
SETTLEMENT_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {SETTLEMENT_TABLE} (
    kind TEXT NOT NULL,                -- capture | refund
    reference TEXT NOT NULL,           -- a capture: the payment's gateway reference; a refund: its operation reference
    payment_id TEXT NOT NULL,
    gateway_reference TEXT NOT NULL,
    refund_id TEXT,
    currency TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,     -- > 0, whichever way the money went
    booked_at_ms INTEGER NOT NULL,
    PRIMARY KEY (kind, reference)
);
CREATE INDEX IF NOT EXISTS settlement_movements_by_time ON {SETTLEMENT_TABLE} (booked_at_ms);
"""

_DAY = re.compile(r"\d{4}-\d{2}-\d{2}", re.ASCII)


class SandboxFeedError(RuntimeError):
    """The sandbox did not hand over a day's feed."""


def record_capture(db: sqlite3.Connection, *, payment_id: str, gateway_reference: str, currency: str,
                   amount_minor: int, at_ms: int) -> None:
    """Book a capture that became final, inside the caller's transaction (one per payment: a payment captures once)."""
    db.execute(
        f"INSERT OR IGNORE INTO {SETTLEMENT_TABLE} (kind, reference, payment_id, gateway_reference, refund_id,"  # noqa: S608
        " currency, amount_minor, booked_at_ms) VALUES (?, ?, ?, ?, NULL, ?, ?, ?)",
        (LineType.CAPTURE.value, gateway_reference, payment_id, gateway_reference, currency, amount_minor, at_ms),
    )


def record_refund(db: sqlite3.Connection, *, payment_id: str, gateway_reference: str, refund_id: str | None,
                  operation_reference: str, currency: str, amount_minor: int, at_ms: int) -> None:
    """Book a refund that succeeded, inside the caller's transaction."""
    db.execute(
        f"INSERT OR IGNORE INTO {SETTLEMENT_TABLE} (kind, reference, payment_id, gateway_reference, refund_id,"  # noqa: S608
        " currency, amount_minor, booked_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (LineType.REFUND.value, operation_reference, payment_id, gateway_reference, refund_id, currency,
         amount_minor, at_ms),
    )


def parse_day(text: str) -> date:
    """'2026-12-03' -> that date; ValueError for anything else (the route's 400)."""
    if not _DAY.fullmatch(text):
        raise ValueError(f"not YYYY-MM-DD: {text!r}")
    return date.fromisoformat(text)


def _iso_ms(at_ms: int) -> str:
    seconds, millis = divmod(at_ms, 1000)
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{millis:03d}Z"


def feed_csv(db: sqlite3.Connection, day: date) -> bytes:
    """The feed of the UTC day `day`: its captures, then its refunds (each by booking time), then one payout per
    currency. Built from committed rows only, so the same day read twice gives the same bytes once the day is over."""
    start_ms = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp() * 1000)
    rows = db.execute(
        f"SELECT * FROM {SETTLEMENT_TABLE} WHERE booked_at_ms >= ? AND booked_at_ms < ?"  # noqa: S608
        " ORDER BY kind = 'refund', booked_at_ms, reference",
        (start_ms, start_ms + DAY_MS),
    ).fetchall()
    compact = day.strftime("%Y%m%d")
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(FEED_COLUMNS)
    nets: defaultdict[str, int] = defaultdict(int)
    for row in rows:
        kind, currency = LineType(row["kind"]), str(row["currency"])
        gross = row["amount_minor"] if kind is LineType.CAPTURE else -row["amount_minor"]
        fee = expected_fee_minor("sandbox", kind, gross, currency)
        nets[currency] += gross - fee
        refund = kind is LineType.REFUND
        writer.writerow([
            f"sbx:{compact}:{kind.value}:{row['reference']}", f"sandbox-{compact}-{currency}", kind.value,
            row["payment_id"], row["gateway_reference"], row["refund_id"] or "",
            row["reference"] if refund else "", currency, gross, fee, gross - fee, _iso_ms(row["booked_at_ms"]),
        ])
    payouts = 0
    for currency, net in sorted(nets.items()):
        # A day whose refunds outweigh its captures pays nothing out (a payout never takes money in); its batch is
        # left with a negative balance, as a real gateway would carry it over.
        if net > 0:
            writer.writerow([
                f"sbx:{compact}:payout:{currency}", f"sandbox-{compact}-{currency}", LineType.PAYOUT.value,
                "", "", "", "", currency, -net, 0, -net, _iso_ms(start_ms + DAY_MS - 1),
            ])
            payouts += 1
    out.write(f"{TRAILER_PREFIX}{len(rows) + payouts}\n")
    return out.getvalue().encode("utf-8")


def fetch_sandbox_feed(base_url: str, day: date, *, timeout_s: float = 10) -> bytes:
    """The sandbox's feed of one UTC day, as bytes for `parse_sandbox_feed`; SandboxFeedError when it is not given."""
    url = f"{base_url.rstrip('/')}/_sandbox/settlements/{day.isoformat()}"
    try:
        response = httpx.get(url, timeout=timeout_s)
    except httpx.HTTPError as bad:
        raise SandboxFeedError(f"GET {url}: {bad!r}") from bad
    if response.status_code != 200:
        raise SandboxFeedError(f"GET {url}: HTTP {response.status_code}: {response.text[:500]}")
    return response.content
