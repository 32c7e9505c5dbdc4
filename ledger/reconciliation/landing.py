"""The ledger as it lands in files: one row per entry with what reconciliation and finance need beside it (its
transaction's kind and owners, its account, the gateway references), columns core.ledger_landing.LANDING_COLUMNS.

`JOURNAL_SQL` is that relation in PostgreSQL; the matcher reads it from here, or the same columns from the landed
Parquet files (DuckDB locally, Athena on AWS). `day_rows` gives one UTC day of it for a sink to write; `mark_landed`
records that a sink holds a day, so the scheduled landing knows what is left.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.dialects.postgresql import insert

from core.ledger_landing import LANDING_COLUMNS
from ledger.reconciliation.schema import ledger_landings

__all__ = ["JOURNAL_SQL", "LANDING_BATCH", "day_rows", "landed_days", "mark_landed"]

LANDING_BATCH = 5_000

JOURNAL_SQL = """
SELECT e.id AS entry_id, t.id AS transaction_id, t.kind AS transaction_kind, t.payment_id, t.operation_id,
       t.settlement_batch_id, a.code AS account_code, a.kind AS account_kind, a.gateway, e.side, e.effect,
       e.amount_minor, e.currency, e.created_at, p.gateway_reference AS payment_gateway_reference,
       o.gateway_reference AS operation_gateway_reference
  FROM ledger_entries AS e
  JOIN ledger_transactions AS t ON t.id = e.transaction_id
  JOIN accounts AS a ON a.id = e.account_id
  LEFT JOIN payments AS p ON p.id = t.payment_id
  LEFT JOIN payment_operations AS o ON o.id = t.operation_id
"""


def _bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return start, start + timedelta(days=1)


def day_rows(conn: Connection, day: date) -> Iterator[list[dict[str, Any]]]:
    """The day's entries (created_at within the UTC day), in id order, LANDING_BATCH at a time, keyed by the landing
    columns."""
    start, end = _bounds(day)
    after = 0
    names = [name for name, _ in LANDING_COLUMNS]
    while True:
        rows = conn.execute(text(
            f"SELECT * FROM ({JOURNAL_SQL}) AS j WHERE j.created_at >= :start AND j.created_at < :end"  # noqa: S608
            " AND j.entry_id > :after ORDER BY j.entry_id LIMIT :limit"),
            {"start": start, "end": end, "after": after, "limit": LANDING_BATCH}).mappings().all()
        if not rows:
            return
        yield [{name: row[name] for name in names} for row in rows]
        after = int(rows[-1]["entry_id"])


def mark_landed(conn: Connection, *, sink: str, day: date, entries: int, last_entry_id: int | None) -> None:
    stmt = insert(ledger_landings).values(sink=sink, day=day, entries=entries, last_entry_id=last_entry_id)
    conn.execute(stmt.on_conflict_do_update(
        index_elements=[ledger_landings.c.sink, ledger_landings.c.day],
        set_={"entries": stmt.excluded.entries, "last_entry_id": stmt.excluded.last_entry_id,
              "landed_at": text("now()")}))


def landed_days(conn: Connection, *, sink: str) -> set[date]:
    rows = conn.execute(text("SELECT day FROM ledger_landings WHERE sink = :sink"), {"sink": sink})
    return {row.day for row in rows}
