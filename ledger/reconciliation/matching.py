"""Matching: what the ledger expects each gateway to settle, against what it settled.

The ledger expects, per gateway and currency, one settled movement for every posted movement of a gateway clearing
account: a capture (`post`, +), a refund (`refund_post`, -), the saga's own full refund (`reverse`, -), a chargeback
(`dispute_opened`, -) and its reversal (`dispute_won`, +). Each side gets a match key naming that movement
("capture:<payment>", "refund:<refund>", "reversal:<payment>", "chargeback:<payment>", "chargeback_reversal:
<payment>"); a line whose payment is unknown keys on itself ("line:<id>").

`MATCH_SQL` is one query in the SQL PostgreSQL and DuckDB (and Athena) all speak, over two relations with the landing
columns (`journal`) and the settlement lines (`lines`), so the same matching runs over the database or over the
landed Parquet files. Its rows (a full outer join on the key) are classified here, in Python, one way for both.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from ledger.reconciliation.lines import MATCHED_TYPES, LineType
from ledger.reconciliation.terms import GATEWAY_TERMS, expected_fee_minor

__all__ = ["MATCH_SQL", "PAYOUT_SQL", "Finding", "Outcome", "classify", "classify_payouts", "match_sql"]


class Outcome(enum.StrEnum):
    MATCHED = "matched"
    NOT_DUE = "not_yet_due"  # the ledger moved it, the gateway's settlement delay has not passed
    AMOUNT_MISMATCH = "amount_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    FEE_MISMATCH = "fee_mismatch"
    MISSING_FROM_SETTLEMENT = "missing_from_settlement"
    UNKNOWN_TO_LEDGER = "unknown_to_ledger"
    DUPLICATE = "duplicate"
    PAYOUT_MISMATCH = "payout_mismatch"


# The outcomes that are discrepancies (recon_discrepancies.kind): the rest are counted only.
DISCREPANCY_OUTCOMES = frozenset(Outcome) - {Outcome.MATCHED, Outcome.NOT_DUE}

_KIND_TO_TYPE = {"post": "capture", "refund_post": "refund", "reverse": "refund", "dispute_opened": "chargeback",
                 "dispute_won": "chargeback_reversal"}
_EXPECTED_KEY = """CASE j.transaction_kind
        WHEN 'post' THEN 'capture:' || CAST(j.payment_id AS VARCHAR)
        WHEN 'refund_post' THEN 'refund:' || CAST(j.operation_id AS VARCHAR)
        WHEN 'reverse' THEN 'reversal:' || CAST(j.payment_id AS VARCHAR)
        WHEN 'dispute_opened' THEN 'chargeback:' || CAST(j.payment_id AS VARCHAR)
        WHEN 'dispute_won' THEN 'chargeback_reversal:' || CAST(j.payment_id AS VARCHAR) END"""
_SETTLED_KEY = """CASE
        WHEN l.type = 'refund' AND l.operation_id IS NOT NULL THEN 'refund:' || CAST(l.operation_id AS VARCHAR)
        WHEN l.payment_id IS NULL THEN 'line:' || CAST(l.line_id AS VARCHAR)
        WHEN l.type = 'capture' THEN 'capture:' || CAST(l.payment_id AS VARCHAR)
        WHEN l.type = 'refund' THEN 'reversal:' || CAST(l.payment_id AS VARCHAR)
        WHEN l.type = 'chargeback' THEN 'chargeback:' || CAST(l.payment_id AS VARCHAR)
        ELSE 'chargeback_reversal:' || CAST(l.payment_id AS VARCHAR) END"""
_EXPECTED_KINDS = ", ".join(f"'{k}'" for k in _KIND_TO_TYPE)
_MATCHED_LINE_TYPES = ", ".join(f"'{t}'" for t in sorted(MATCHED_TYPES))

MATCH_SQL = f"""
WITH expected AS (
    SELECT {_EXPECTED_KEY} AS match_key, j.gateway, j.currency, j.transaction_kind, j.payment_id, j.operation_id,
           sum(CASE WHEN j.side = 'debit' THEN j.amount_minor ELSE -j.amount_minor END) AS expected_minor,
           min(j.created_at) AS booked_at
      FROM {{journal}} AS j
     WHERE j.account_kind = 'gateway_clearing' AND j.effect = 'post'
       AND j.transaction_kind IN ({_EXPECTED_KINDS}) AND j.created_at <= {{as_of}}
     GROUP BY 1, j.gateway, j.currency, j.transaction_kind, j.payment_id, j.operation_id
), settled AS (
    SELECT {_SETTLED_KEY} AS match_key, l.line_id, l.batch_id, l.gateway, l.type, l.currency, l.gross_minor,
           l.fee_minor, l.payment_id, l.operation_id
      FROM {{lines}} AS l
     WHERE l.type IN ({_MATCHED_LINE_TYPES}) AND l.booked_at <= {{as_of}}
)
SELECT coalesce(e.match_key, s.match_key) AS match_key, coalesce(e.gateway, s.gateway) AS gateway,
       e.currency AS expected_currency, e.expected_minor, e.booked_at AS expected_at, e.transaction_kind,
       coalesce(e.payment_id, s.payment_id) AS payment_id, coalesce(e.operation_id, s.operation_id) AS operation_id,
       s.line_id, s.batch_id, s.type AS line_type, s.currency AS line_currency, s.gross_minor, s.fee_minor
  FROM expected AS e
  FULL OUTER JOIN settled AS s ON s.match_key = e.match_key AND s.gateway = e.gateway
 ORDER BY 1, s.line_id
"""  # noqa: S608  # fixed fragments written here, no input

# Per batch and currency that holds a payout: the lines' nets against what was paid out (a payout's gross is < 0).
PAYOUT_SQL = """
SELECT l.batch_id, l.gateway, l.currency,
       sum(CASE WHEN l.type <> 'payout' THEN l.net_minor ELSE 0 END) AS net_minor,
       -sum(CASE WHEN l.type = 'payout' THEN l.gross_minor ELSE 0 END) AS paid_out_minor,
       sum(CASE WHEN l.type = 'payout' THEN 1 ELSE 0 END) AS payouts
  FROM {lines} AS l
 WHERE l.booked_at <= {as_of}
 GROUP BY l.batch_id, l.gateway, l.currency
HAVING sum(CASE WHEN l.type = 'payout' THEN 1 ELSE 0 END) > 0
 ORDER BY l.batch_id, l.currency
"""


def match_sql(template: str, *, journal: str, lines: str, as_of: datetime) -> str:
    """The query over the given relations at `as_of` (a literal: DuckDB and PostgreSQL read the same text)."""
    literal = f"CAST('{as_of.isoformat()}' AS TIMESTAMP WITH TIME ZONE)"
    return template.format(journal=journal, lines=lines, as_of=literal)


@dataclass(frozen=True, slots=True)
class Finding:
    outcome: Outcome
    gateway: str
    subject: str  # what it is about, stable across runs (the match key, or "batch:<id>:<currency>")
    detail: str
    currency: str | None = None
    expected_minor: int | None = None
    settled_minor: int | None = None
    payment_id: int | None = None
    operation_id: int | None = None
    batch_id: int | None = None
    line_ids: tuple[int, ...] = field(default=())


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _one(key: str, rows: list[Mapping[str, Any]], as_of: datetime) -> list[Finding]:
    first = rows[0]
    gateway = str(first["gateway"])
    lines = [r for r in rows if r["line_id"] is not None]
    ids = tuple(int(r["line_id"]) for r in lines)
    base = Finding(Outcome.MATCHED, gateway, key, "", payment_id=_int(first["payment_id"]),
                   operation_id=_int(first["operation_id"]), line_ids=ids)
    if not lines:
        due = first["expected_at"] + timedelta(milliseconds=GATEWAY_TERMS[gateway].settlement_delay_ms) <= as_of
        return [replace(base, outcome=Outcome.MISSING_FROM_SETTLEMENT if due else Outcome.NOT_DUE,
                        detail=f"{first['transaction_kind']} of {first['expected_minor']} {first['expected_currency']}"
                               f" booked {first['expected_at']:%Y-%m-%d %H:%M} UTC not settled",
                        currency=first["expected_currency"], expected_minor=_int(first["expected_minor"]))]
    if first["expected_minor"] is None:
        return [replace(base, outcome=Outcome.UNKNOWN_TO_LEDGER,
                        subject=key if len(lines) == 1 else f"line:{r['line_id']}",
                        detail=f"{r['line_type']} of {r['gross_minor']} {r['line_currency']} settled; the ledger holds"
                               " no such movement",
                        currency=r["line_currency"], settled_minor=int(r["gross_minor"]), batch_id=_int(r["batch_id"]),
                        line_ids=(int(r["line_id"]),))
                for r in lines]
    expected_minor, currency = int(first["expected_minor"]), str(first["expected_currency"])
    if len(lines) > 1:
        return [replace(base, outcome=Outcome.DUPLICATE,
                        detail=f"settled {len(lines)} times (lines {', '.join(map(str, ids))})", currency=currency,
                        expected_minor=expected_minor, settled_minor=sum(int(r["gross_minor"]) for r in lines),
                        batch_id=_int(lines[-1]["batch_id"]))]
    line = lines[0]
    gross, line_currency = int(line["gross_minor"]), str(line["line_currency"])
    base = replace(base, batch_id=_int(line["batch_id"]), currency=currency, expected_minor=expected_minor,
                   settled_minor=gross)
    if line_currency != currency:
        return [replace(base, outcome=Outcome.CURRENCY_MISMATCH, currency=line_currency,
                        detail=f"booked in {currency}, settled in {line_currency}")]
    if gross != expected_minor:
        return [replace(base, outcome=Outcome.AMOUNT_MISMATCH,
                        detail=f"booked {expected_minor}, settled {gross} {currency}")]
    fee = expected_fee_minor(gateway, LineType(str(line["line_type"])), gross, currency)
    if int(line["fee_minor"]) != fee:
        return [replace(base, outcome=Outcome.FEE_MISMATCH, expected_minor=fee, settled_minor=int(line["fee_minor"]),
                        detail=f"fee {line['fee_minor']} charged, {fee} {currency} by the {gateway} terms")]
    return [replace(base, detail="matched")]


def classify(rows: Iterable[Mapping[str, Any]], *, as_of: datetime) -> list[Finding]:
    """One finding per match key (per line for lines the ledger does not know); MATCH_SQL's rows in, any order."""
    by_key: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        by_key[str(row["match_key"])].append(row)
    findings: list[Finding] = []
    for key in sorted(by_key):
        findings += _one(key, by_key[key], as_of)
    return findings


def classify_payouts(rows: Iterable[Mapping[str, Any]]) -> list[Finding]:
    """PAYOUT_SQL's rows: a batch whose payout is not the sum of its lines' nets."""
    findings = []
    for row in rows:
        net, paid = int(row["net_minor"]), int(row["paid_out_minor"])
        if net != paid:
            findings.append(Finding(
                Outcome.PAYOUT_MISMATCH, str(row["gateway"]), f"batch:{row['batch_id']}:{row['currency']}",
                f"paid out {paid}, the lines' nets sum to {net} {row['currency']}", currency=str(row["currency"]),
                expected_minor=net, settled_minor=paid, batch_id=int(row["batch_id"])))
    return findings
