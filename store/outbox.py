"""The transactional outbox: events written in the ledger's transaction, relayed to SQS afterwards."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects.postgresql import insert

from store.results import Reason, WriteResult
from store.schema import outbox

MAX_BATCH = 500  # a relay batch is bounded: a backlog never loads into memory at once


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    id: str
    payment_id: int
    event_type: str
    payload: dict[str, Any]
    created_at: datetime
    sent_at: datetime | None
    attempts: int


def insert_event(
    conn: Connection, *, event_id: str, payment_id: int, event_type: str, payload: Mapping[str, Any]
) -> WriteResult:
    """Write the event unless this payment already has one of this type (or the id exists): ALREADY_EXISTS."""
    row = conn.execute(
        insert(outbox)
        .values(id=event_id, payment_id=payment_id, event_type=event_type, payload=dict(payload))
        .on_conflict_do_nothing()
        .returning(outbox.c.id)
    ).first()
    return WriteResult(True, Reason.APPLIED) if row is not None else WriteResult(False, Reason.ALREADY_EXISTS)


def get_event(conn: Connection, *, payment_id: int, event_type: str) -> OutboxEvent | None:
    row = (
        conn.execute(select(outbox).where(outbox.c.payment_id == payment_id, outbox.c.event_type == event_type))
        .mappings()
        .first()
    )
    return None if row is None else OutboxEvent(**dict(row))


def unsent_events(conn: Connection, *, limit: int = 100) -> list[OutboxEvent]:
    """Oldest unsent events first, at most `limit` (<= MAX_BATCH); skips rows another relay holds locked."""
    query = (
        select(outbox)
        .where(outbox.c.sent_at.is_(None))
        .order_by(outbox.c.created_at, outbox.c.id)
        .limit(min(max(limit, 1), MAX_BATCH))
        .with_for_update(skip_locked=True)
    )
    return [OutboxEvent(**dict(row)) for row in conn.execute(query).mappings()]


def record_attempt(conn: Connection, *, event_id: str) -> WriteResult:
    row = conn.execute(
        update(outbox).where(outbox.c.id == event_id).values(attempts=outbox.c.attempts + 1).returning(outbox.c.id)
    ).first()
    return WriteResult(True, Reason.APPLIED) if row is not None else WriteResult(False, Reason.NOT_FOUND)


def mark_sent(conn: Connection, *, event_id: str) -> WriteResult:
    """Stamp sent_at once; a second call is ALREADY_APPLIED and keeps the first time."""
    row = conn.execute(
        update(outbox)
        .where(outbox.c.id == event_id, outbox.c.sent_at.is_(None))
        .values(sent_at=func.now())
        .returning(outbox.c.id)
    ).first()
    if row is not None:
        return WriteResult(True, Reason.APPLIED)
    exists = conn.execute(select(outbox.c.id).where(outbox.c.id == event_id)).first()
    return WriteResult(False, Reason.ALREADY_APPLIED if exists else Reason.NOT_FOUND)
