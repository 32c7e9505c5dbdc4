"""Merchant webhook records: endpoints (with their signing secrets), deliveries (one per event and endpoint) and the
attempts at each (append-only). The sending itself is saga.notifications.webhooks'.

A secret is kept as it is (the service signs with it), read only where a request is signed or a secret shown once;
`Endpoint.__repr__` leaves the secrets out, so a log line or a traceback never carries one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, DateTime, Text, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert

from store.outbox import OutboxEvent
from store.results import Reason, WriteResult
from store.schema import outbox, webhook_attempts, webhook_deliveries, webhook_endpoints

MAX_BATCH = 500
MAX_LIST = 1_000


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: str
    merchant_id: str
    url: str
    secret: str = field(repr=False)
    previous_secret: str | None = field(repr=False)
    previous_secret_expires_at: datetime | None
    created_at: datetime
    disabled_at: datetime | None

    def secrets_at(self, now: datetime) -> list[str]:
        """The secrets that sign a request sent at `now`: the current one, and the previous one during the overlap."""
        live = [self.secret]
        if self.previous_secret is not None and self.previous_secret_expires_at is not None and (
                now < self.previous_secret_expires_at):
            live.append(self.previous_secret)
        return live


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    event_id: str
    endpoint_id: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Attempt:
    id: int
    delivery_id: int
    attempted_at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None


@dataclass(frozen=True, slots=True)
class Claimed:
    """A due delivery claimed for one attempt, with what it takes to send it."""

    delivery: Delivery
    endpoint: Endpoint
    event: OutboxEvent


# ---- endpoints -------------------------------------------------------------------------------------------------------


def insert_endpoint(conn: Connection, *, endpoint_id: str, merchant_id: str, url: str, secret: str) -> WriteResult:
    row = conn.execute(
        insert(webhook_endpoints)
        .values(id=endpoint_id, merchant_id=merchant_id, url=url, secret=secret)
        .on_conflict_do_nothing()
        .returning(webhook_endpoints.c.id)
    ).first()
    return WriteResult(True, Reason.APPLIED) if row is not None else WriteResult(False, Reason.ALREADY_EXISTS)


def get_endpoint(conn: Connection, *, endpoint_id: str) -> Endpoint | None:
    row = conn.execute(select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)).mappings().first()
    return None if row is None else Endpoint(**dict(row))


def list_endpoints(conn: Connection, *, merchant_id: str, include_disabled: bool = False) -> list[Endpoint]:
    query = select(webhook_endpoints).where(webhook_endpoints.c.merchant_id == merchant_id)
    if not include_disabled:
        query = query.where(webhook_endpoints.c.disabled_at.is_(None))
    query = query.order_by(webhook_endpoints.c.created_at, webhook_endpoints.c.id).limit(MAX_LIST)
    return [Endpoint(**dict(row)) for row in conn.execute(query).mappings()]


def disable_endpoint(conn: Connection, *, endpoint_id: str) -> WriteResult:
    """Stop sending to the endpoint (its pending deliveries are not sent again); a second call: ALREADY_APPLIED."""
    row = conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.disabled_at.is_(None))
        .values(disabled_at=func.now())
        .returning(webhook_endpoints.c.id)
    ).first()
    if row is not None:
        return WriteResult(True, Reason.APPLIED)
    exists = get_endpoint(conn, endpoint_id=endpoint_id) is not None
    return WriteResult(False, Reason.ALREADY_APPLIED if exists else Reason.NOT_FOUND)


def rotate_secret(conn: Connection, *, endpoint_id: str, secret: str, previous_expires_at: datetime) -> WriteResult:
    """The new secret signs from now on; the current one becomes the previous, signing too until
    `previous_expires_at`. Only an endpoint still enabled."""
    row = conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.disabled_at.is_(None))
        .values(previous_secret=webhook_endpoints.c.secret, previous_secret_expires_at=previous_expires_at,
                secret=secret)
        .returning(webhook_endpoints.c.id)
    ).first()
    return WriteResult(True, Reason.APPLIED) if row is not None else WriteResult(False, Reason.NOT_FOUND)


# ---- deliveries ------------------------------------------------------------------------------------------------------


def insert_deliveries(conn: Connection, *, event_id: str, merchant_id: str, due_at: datetime) -> int:
    """One pending delivery of the event to each enabled endpoint of the merchant, due at `due_at`; a pair that has
    one already is left as it is. How many were made."""
    endpoints = select(webhook_endpoints.c.id).where(webhook_endpoints.c.merchant_id == merchant_id,
                                                     webhook_endpoints.c.disabled_at.is_(None))
    made = conn.execute(
        insert(webhook_deliveries)
        .from_select(["event_id", "endpoint_id", "next_attempt_at"],
                     select(literal(event_id, Text()), endpoints.subquery().c.id,
                            literal(due_at, DateTime(timezone=True))))
        .on_conflict_do_nothing(index_elements=["event_id", "endpoint_id"])
        .returning(webhook_deliveries.c.id)
    ).all()
    return len(made)


def claim_due(conn: Connection, *, now: datetime, claim_until: datetime, limit: int) -> list[Claimed]:
    """The pending deliveries due at `now` (oldest first, at most `limit`), to enabled endpoints, skipping rows another
    sender holds; each is moved to `claim_until`, so that no other sender takes it before its attempt is recorded (or
    its sender died: then it is due again). Commit before sending."""
    due = (
        select(webhook_deliveries.c.id)
        .join(webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id)
        .where(webhook_deliveries.c.status == "pending", webhook_deliveries.c.next_attempt_at <= now,
               webhook_endpoints.c.disabled_at.is_(None))
        .order_by(webhook_deliveries.c.next_attempt_at, webhook_deliveries.c.id)
        .limit(min(max(limit, 1), MAX_BATCH))
        .with_for_update(of=webhook_deliveries, skip_locked=True)
    )
    ids = list(conn.execute(due).scalars())
    if not ids:
        return []
    conn.execute(update(webhook_deliveries).where(webhook_deliveries.c.id.in_(ids))
                 .values(next_attempt_at=claim_until, updated_at=func.now()))
    rows = conn.execute(
        select(webhook_deliveries, webhook_endpoints, outbox)
        .join(webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id)
        .join(outbox, outbox.c.id == webhook_deliveries.c.event_id)
        .where(webhook_deliveries.c.id.in_(ids))
        .order_by(webhook_deliveries.c.id)
    ).all()
    n_delivery, n_endpoint = len(webhook_deliveries.c), len(webhook_endpoints.c)
    claimed = []
    for row in rows:
        values: Sequence[Any] = tuple(row)
        delivery = Delivery(**dict(zip(webhook_deliveries.c.keys(), values[:n_delivery], strict=True)))
        endpoint = Endpoint(**dict(zip(webhook_endpoints.c.keys(),
                                       values[n_delivery:n_delivery + n_endpoint], strict=True)))
        event = OutboxEvent(**dict(zip(outbox.c.keys(), values[n_delivery + n_endpoint:], strict=True)))
        claimed.append(Claimed(delivery, endpoint, event))
    return claimed


def record_attempt(
    conn: Connection, *, delivery_id: int, attempts_before: int, attempted_at: datetime, status_code: int | None,
    latency_ms: int, error: str | None, outcome: str, next_attempt_at: datetime,
) -> WriteResult:
    """Append the attempt and move the delivery: `outcome` succeeded, failed, or pending again at `next_attempt_at`.
    Only if the delivery is still pending with `attempts_before` attempts (a sender whose claim lapsed, and whose
    delivery another sender took meanwhile, records nothing): NOT_FOUND otherwise."""
    moved = conn.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.id == delivery_id, webhook_deliveries.c.status == "pending",
               webhook_deliveries.c.attempts == attempts_before)
        .values(status=outcome, attempts=attempts_before + 1, next_attempt_at=next_attempt_at,
                last_status_code=status_code, last_error=error, updated_at=func.now())
        .returning(webhook_deliveries.c.id)
    ).first()
    if moved is None:
        return WriteResult(False, Reason.NOT_FOUND)
    conn.execute(insert(webhook_attempts).values(delivery_id=delivery_id, attempted_at=attempted_at,
                                                 status_code=status_code, latency_ms=latency_ms, error=error))
    return WriteResult(True, Reason.APPLIED)


def reschedule(conn: Connection, *, due_at: datetime, event_id: str | None = None, endpoint_id: str | None = None,
               only_failed: bool = False) -> list[int]:
    """Put deliveries back to pending, due at `due_at`, with their attempts counted afresh (a resend gets the whole
    schedule again): those of an event (to one endpoint, or to every one), or those of an endpoint; `only_failed`
    leaves what succeeded or is still pending alone. Deliveries to a disabled endpoint are left as they are. The
    ids put back."""
    assert event_id is not None or endpoint_id is not None
    enabled = select(webhook_endpoints.c.id).where(webhook_endpoints.c.disabled_at.is_(None))
    query = update(webhook_deliveries).where(webhook_deliveries.c.endpoint_id.in_(enabled))
    if event_id is not None:
        query = query.where(webhook_deliveries.c.event_id == event_id)
    if endpoint_id is not None:
        query = query.where(webhook_deliveries.c.endpoint_id == endpoint_id)
    if only_failed:
        query = query.where(webhook_deliveries.c.status == "failed")
    rows = conn.execute(query.values(status="pending", attempts=0, next_attempt_at=due_at, updated_at=func.now())
                        .returning(webhook_deliveries.c.id)).scalars().all()
    return sorted(rows)


def get_delivery(conn: Connection, *, event_id: str, endpoint_id: str) -> Delivery | None:
    row = conn.execute(select(webhook_deliveries).where(webhook_deliveries.c.event_id == event_id,
                                                        webhook_deliveries.c.endpoint_id == endpoint_id)
                       ).mappings().first()
    return None if row is None else Delivery(**dict(row))


def deliveries_of_endpoint(conn: Connection, *, endpoint_id: str, limit: int = 50) -> list[Delivery]:
    """The endpoint's most recent deliveries first."""
    query = (select(webhook_deliveries).where(webhook_deliveries.c.endpoint_id == endpoint_id)
             .order_by(webhook_deliveries.c.created_at.desc(), webhook_deliveries.c.id.desc())
             .limit(min(max(limit, 1), MAX_LIST)))
    return [Delivery(**dict(row)) for row in conn.execute(query).mappings()]


def deliveries_of_event(conn: Connection, *, event_id: str) -> list[Delivery]:
    query = select(webhook_deliveries).where(webhook_deliveries.c.event_id == event_id).order_by(
        webhook_deliveries.c.id)
    return [Delivery(**dict(row)) for row in conn.execute(query).mappings()]


def attempts_of(conn: Connection, *, delivery_ids: Sequence[int]) -> list[Attempt]:
    """The attempts at these deliveries, in the order they were made."""
    if not delivery_ids:
        return []
    query = (select(webhook_attempts).where(webhook_attempts.c.delivery_id.in_(list(delivery_ids)))
             .order_by(webhook_attempts.c.delivery_id, webhook_attempts.c.id))
    return [Attempt(**dict(row)) for row in conn.execute(query).mappings()]


def merchant_of_event(conn: Connection, *, event_id: str) -> str | None:
    """The merchant whose endpoints an event goes to (its payload's merchant_id), None for an unknown event."""
    row = conn.execute(select(outbox.c.payload["merchant_id"].astext).where(outbox.c.id == event_id)).first()
    return None if row is None else row[0]
