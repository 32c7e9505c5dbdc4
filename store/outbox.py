"""The transactional outbox: events written in the ledger's transaction, relayed to SQS afterwards."""

from __future__ import annotations

import json
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
    operation_id: int | None  # the operation (capture, cancel, refund) the event tells of


def event_message(event: OutboxEvent) -> str:
    """The one JSON form of an event, wherever it goes: the notifications queue's message, SNS, the EventBridge
    detail and the merchant webhook's body: {"id": <ULID>, "type", "created_at": <ISO 8601 UTC>, "data": <payload>}.
    Compact and key-sorted, so the same event is the same bytes every time it is sent."""
    return json.dumps({"id": event.id, "type": event.event_type, "created_at": event.created_at.isoformat(),
                       "data": event.payload}, sort_keys=True, separators=(",", ":"))


def insert_event(
    conn: Connection, *, event_id: str, payment_id: int, event_type: str, payload: Mapping[str, Any],
    operation_id: int | None = None,
) -> WriteResult:
    """Write the event unless this payment (or, for an operation's event, this operation) already has one of this
    type, or the id exists: ALREADY_EXISTS."""
    row = conn.execute(
        insert(outbox)
        .values(id=event_id, payment_id=payment_id, event_type=event_type, payload=dict(payload),
                operation_id=operation_id)
        .on_conflict_do_nothing()
        .returning(outbox.c.id)
    ).first()
    return WriteResult(True, Reason.APPLIED) if row is not None else WriteResult(False, Reason.ALREADY_EXISTS)


def get_event(conn: Connection, *, payment_id: int, event_type: str, operation_id: int | None = None
              ) -> OutboxEvent | None:
    """The payment's own event of this type, or the operation's."""
    owner = outbox.c.operation_id.is_(None) if operation_id is None else outbox.c.operation_id == operation_id
    row = (
        conn.execute(select(outbox).where(outbox.c.payment_id == payment_id, outbox.c.event_type == event_type,
                                          owner))
        .mappings()
        .first()
    )
    return None if row is None else OutboxEvent(**dict(row))


def event_by_id(conn: Connection, *, event_id: str) -> OutboxEvent | None:
    """The outbox row of this event id: what a consumer announces is what the database holds, never the message."""
    row = conn.execute(select(outbox).where(outbox.c.id == event_id)).mappings().first()
    return None if row is None else OutboxEvent(**dict(row))


def unsent_events(conn: Connection, *, limit: int = 100, older_than_ms: int = 0) -> list[OutboxEvent]:
    """Oldest unsent events first, at most `limit` (<= MAX_BATCH), written at least `older_than_ms` ago (by the
    database's clock); skips rows another relay holds locked."""
    query = (
        select(outbox)
        .where(outbox.c.sent_at.is_(None),
               outbox.c.created_at <= func.clock_timestamp() - func.make_interval(0, 0, 0, 0, 0, 0,
                                                                                  older_than_ms / 1000))
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
