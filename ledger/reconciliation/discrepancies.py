"""Working the discrepancies: list them (finance reads the same through v_recon_discrepancies), resolve one with a
note, read its history. The database keeps the rules (a resolution is once, says who, when and why; the history is
written by a trigger and append-only); the checks here only turn the common mistakes into clear errors first."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text

__all__ = ["DISCREPANCY_COLUMNS", "DiscrepancyError", "history", "list_discrepancies", "resolve"]

DISCREPANCY_COLUMNS = ("discrepancy_id", "kind", "status", "gateway", "subject", "currency", "expected_minor",
                       "settled_minor", "payment_id", "operation_id", "batch_id", "detail", "opened_at",
                       "resolved_at", "resolved_by", "resolution_note")
_MAX_NOTE = 2_000


class DiscrepancyError(ValueError):
    """A resolution refused: the message says why."""


def list_discrepancies(conn: Connection, *, status: str | None = None, kind: str | None = None,
                       limit: int = 1_000) -> list[dict[str, Any]]:
    """Newest first, from the finance view."""
    query = (f"SELECT {', '.join(DISCREPANCY_COLUMNS)} FROM v_recon_discrepancies"  # noqa: S608  # fixed names
             " WHERE (CAST(:status AS text) IS NULL OR status = :status)"
             " AND (CAST(:kind AS text) IS NULL OR kind = :kind) ORDER BY discrepancy_id DESC LIMIT :limit")
    rows = conn.execute(text(query), {"status": status, "kind": kind, "limit": limit})
    return [dict(row) for row in rows.mappings()]


def resolve(conn: Connection, discrepancy_id: int, *, by: str, note: str) -> dict[str, Any]:
    """Resolve an open discrepancy; its row as it now stands."""
    note, by = note.strip(), by.strip()
    if not note:
        raise DiscrepancyError("a resolution needs a note saying what was done (--note)")
    if len(note) > _MAX_NOTE:
        raise DiscrepancyError(f"the note is {len(note)} characters; at most {_MAX_NOTE}")
    if not by:
        raise DiscrepancyError("a resolution names who resolved it")
    row = conn.execute(text("SELECT status FROM recon_discrepancies WHERE id = :id FOR UPDATE"),
                       {"id": discrepancy_id}).first()
    if row is None:
        raise DiscrepancyError(f"no discrepancy {discrepancy_id}")
    if row.status != "open":
        raise DiscrepancyError(f"discrepancy {discrepancy_id} is {row.status} already")
    conn.execute(text("UPDATE recon_discrepancies SET status = 'resolved', resolved_at = now(), resolved_by = :by,"
                      " resolution_note = :note WHERE id = :id"), {"by": by, "note": note, "id": discrepancy_id})
    found = conn.execute(text(f"SELECT {', '.join(DISCREPANCY_COLUMNS)} FROM v_recon_discrepancies"  # noqa: S608
                              " WHERE discrepancy_id = :id"), {"id": discrepancy_id}).mappings().one()
    return dict(found)


def history(conn: Connection, discrepancy_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(text("SELECT event_id, action, actor, note, run_id, at FROM v_recon_discrepancy_history"
                             " WHERE discrepancy_id = :id ORDER BY event_id"), {"id": discrepancy_id})
    return [dict(row) for row in rows.mappings()]
