"""A reconciliation run: match what the ledger expects against what was settled, as of a moment, from one source
(PostgreSQL, or the landed Parquet files), and keep the discrepancies: a new one opens (the database writes its
history), one still found is marked seen by this run, and an open one no longer found is resolved by the run itself
(it says so in the history). Everything in the caller's one transaction.

Runs are whole (they look at every line and movement up to `as_of`): the hourly run and the aged runs of a settlement
date (T+7/14/30 days) differ in what they are recorded as, so finance can see that a date was looked at again when
its late settlements were due.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from sqlalchemy import Connection, text
from sqlalchemy.dialects.postgresql import insert

from core.ledger_landing import SETTLEMENT_LANDING_COLUMNS
from ledger.reconciliation.importer import resolve_references
from ledger.reconciliation.landing import JOURNAL_SQL
from ledger.reconciliation.matching import (
    DISCREPANCY_OUTCOMES,
    MATCH_SQL,
    PAYOUT_SQL,
    Finding,
    classify,
    classify_payouts,
    match_sql,
)
from ledger.reconciliation.schema import recon_discrepancies, recon_runs

__all__ = ["AGES_DAYS", "LINES_SQL", "MatchSource", "PostgresSource", "RunReport", "run_reconciliation"]

# The aged runs: a settlement date is looked at again this many days after it.
AGES_DAYS: tuple[int, ...] = (7, 14, 30)
_LINE_COLUMNS = ", ".join("id AS line_id" if name == "line_id" else name for name, _ in SETTLEMENT_LANDING_COLUMNS)
LINES_SQL = f"SELECT {_LINE_COLUMNS} FROM settlement_lines"  # noqa: S608  # fixed column names
SYSTEM_ACTOR = "reconciliation"


class MatchSource(Protocol):
    """Where a run reads the ledger's movements and the settlement lines from."""

    @property
    def name(self) -> str: ...

    def rows(self, template: str, as_of: datetime) -> Sequence[Mapping[str, Any]]:
        """`template` (MATCH_SQL or PAYOUT_SQL) over this source's `journal` and `lines` relations."""
        ...


class PostgresSource:
    name = "postgresql"

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def rows(self, template: str, as_of: datetime) -> Sequence[Mapping[str, Any]]:
        sql = match_sql(template, journal=f"({JOURNAL_SQL})", lines=f"({LINES_SQL})", as_of=as_of)
        return [dict(row) for row in self._conn.execute(text(sql)).mappings()]


@dataclass(frozen=True, slots=True)
class RunReport:
    run_id: int
    schedule: str
    as_of: datetime
    source: str
    counts: dict[str, int]  # outcome -> how many
    opened: tuple[Finding, ...]  # the discrepancies this run found first
    closed: int  # open discrepancies this run no longer found (resolved by it)

    @property
    def matched(self) -> int:
        return self.counts.get("matched", 0)


def _record(conn: Connection, run_id: int, findings: list[Finding]) -> list[Finding]:
    """Upsert the discrepancies; the ones inserted now (opened by this run)."""
    opened = []
    for finding in findings:
        stmt = insert(recon_discrepancies).values(
            kind=str(finding.outcome), gateway=finding.gateway, subject=finding.subject, currency=finding.currency,
            expected_minor=finding.expected_minor, settled_minor=finding.settled_minor,
            payment_id=finding.payment_id, operation_id=finding.operation_id, batch_id=finding.batch_id,
            line_ids=list(finding.line_ids), detail=finding.detail, opened_run_id=run_id, last_seen_run_id=run_id)
        stmt = stmt.on_conflict_do_update(constraint="uq_recon_discrepancies_kind_gateway_subject",
                                          set_={"last_seen_run_id": run_id})
        inserted = conn.execute(stmt.returning(text("(xmax = 0) AS inserted"))).scalar_one()
        if inserted:
            opened.append(finding)
    return opened


def run_reconciliation(conn: Connection, *, source: MatchSource, as_of: datetime, schedule: str = "manual",
                       settlement_date: date | None = None) -> RunReport:
    """Run once; see the module docstring."""
    assert as_of.tzinfo is not None, "as_of must be timezone-aware"
    run_id = int(conn.execute(insert(recon_runs).values(
        schedule=schedule, as_of=as_of, settlement_date=settlement_date, source=source.name,
    ).returning(recon_runs.c.id)).scalar_one())
    resolve_references(conn)
    findings = classify(source.rows(MATCH_SQL, as_of), as_of=as_of)
    findings += classify_payouts(source.rows(PAYOUT_SQL, as_of))
    counts = Counter(str(f.outcome) for f in findings)
    opened = _record(conn, run_id, [f for f in findings if f.outcome in DISCREPANCY_OUTCOMES])
    closed = conn.execute(text(
        "UPDATE recon_discrepancies SET status = 'resolved', resolved_at = now(), resolved_by = :actor,"
        " resolution_note = 'no longer found by run ' || :run || ' (as of ' || :as_of || ')'"
        " WHERE status = 'open' AND last_seen_run_id <> :run"),
        {"actor": SYSTEM_ACTOR, "run": run_id, "as_of": as_of.isoformat()}).rowcount
    conn.execute(recon_runs.update().where(recon_runs.c.id == run_id).values(
        counts=dict(counts), opened=len(opened), closed=closed, finished_at=text("now()")))
    return RunReport(run_id, schedule, as_of, source.name, dict(counts), tuple(opened), closed)
