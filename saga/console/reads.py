"""What the console reads that no store module reads yet. The console runs as the functions' database user
(paysaga_app), which may read the base tables but not the finance views (v_journal, v_recon_discrepancies): the
journal and the discrepancies are read here from the tables those views are made of, with the views' columns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Connection, DateTime, literal, select, text, tuple_

from ledger.reconciliation.discrepancies import DISCREPANCY_COLUMNS
from store.outbox import OutboxEvent
from store.payments import Payment
from store.replay_audit import AuditRow
from store.schema import outbox, payments

__all__ = ["audit_page", "events_of_payment", "journal_of", "open_discrepancies", "outcomes_per_minute",
           "parked_payments"]

_JOURNAL = """
SELECT e.id AS entry_id, t.id AS transaction_id, t.payment_id, t.kind AS transaction_kind, e.created_at,
       a.code AS account_code, e.side, e.effect, e.amount_minor, e.currency
  FROM ledger_entries AS e
  JOIN ledger_transactions AS t ON t.id = e.transaction_id
  JOIN accounts AS a ON a.id = e.account_id
 WHERE t.payment_id = :p
 ORDER BY e.id
"""


def journal_of(conn: Connection, *, payment_id: int) -> list[dict[str, Any]]:
    """The payment's ledger entries with ledger.reports.journal's columns (JOURNAL_COLUMNS)."""
    return [dict(row) for row in conn.execute(text(_JOURNAL), {"p": payment_id}).mappings()]


def open_discrepancies(conn: Connection, *, before_id: int | None, limit: int) -> list[dict[str, Any]]:
    """Open reconciliation discrepancies, newest first (v_recon_discrepancies' columns), below `before_id`."""
    columns = ", ".join("id AS discrepancy_id" if c == "discrepancy_id" else c for c in DISCREPANCY_COLUMNS)
    query = (f"SELECT {columns} FROM recon_discrepancies WHERE status = 'open'"  # noqa: S608  # fixed names
             " AND (CAST(:before AS bigint) IS NULL OR id < :before) ORDER BY id DESC LIMIT :limit")
    return [dict(row) for row in conn.execute(text(query), {"before": before_id, "limit": limit}).mappings()]


def parked_payments(conn: Connection, *, after: tuple[datetime, int] | None, limit: int) -> list[Payment]:
    """The payments parked as needs_attention: the work queue, oldest first, after the cursor (created_at, id)."""
    query = select(payments).where(payments.c.status == "needs_attention")
    if after is not None:
        cursor = tuple_(literal(after[0], DateTime(timezone=True)), literal(after[1], BigInteger))
        query = query.where(tuple_(payments.c.created_at, payments.c.id) > cursor)
    query = query.order_by(payments.c.created_at, payments.c.id).limit(limit)
    return [Payment(**dict(row)) for row in conn.execute(query).mappings()]


def events_of_payment(conn: Connection, *, payment_id: int) -> list[OutboxEvent]:
    query = select(outbox).where(outbox.c.payment_id == payment_id).order_by(outbox.c.created_at, outbox.c.id)
    return [OutboxEvent(**dict(row)) for row in conn.execute(query).mappings()]


def audit_page(conn: Connection, *, before_id: int | None, limit: int,
               execution_arn: str | None = None) -> list[AuditRow]:
    """Replay audit rows, newest first, below `before_id`; of one execution (the replayed one or the one a replay
    started) when `execution_arn` is given."""
    query = ("SELECT id, at, operator, reason, execution_arn, action, new_execution_arn, outcome, detail"
             " FROM replay_audit WHERE (CAST(:before AS bigint) IS NULL OR id < :before)"
             " AND (CAST(:arn AS text) IS NULL OR execution_arn = :arn OR new_execution_arn = :arn)"
             " ORDER BY id DESC LIMIT :limit")
    rows = conn.execute(text(query), {"before": before_id, "arn": execution_arn, "limit": limit}).mappings()
    return [AuditRow(**dict(row)) for row in rows]


def outcomes_per_minute(conn: Connection, *, since: datetime) -> list[tuple[datetime, str, int]]:
    """(minute, outcome, payments) of the payments created since `since`: outcome is succeeded, failed (a business
    outcome: declined, compensated), attention (parked) or other (running, held for review or capture)."""
    query = text("""
        SELECT date_trunc('minute', created_at) AS minute,
               CASE WHEN status = 'succeeded' THEN 'succeeded'
                    WHEN status IN ('rejected', 'failed', 'refunded', 'canceled') THEN 'failed'
                    WHEN status = 'needs_attention' THEN 'attention'
                    ELSE 'other' END AS outcome,
               count(*) AS payments
          FROM payments WHERE created_at >= :since GROUP BY 1, 2 ORDER BY 1, 2""")
    return [(row.minute, str(row.outcome), int(row.payments)) for row in conn.execute(query, {"since": since})]
