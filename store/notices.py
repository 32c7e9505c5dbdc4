"""Gateway webhook notices: stored once by (gateway, event_id), applied later (saga.webhooks), read back by the
adapters of gateways without a read API (Adyen)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert

from store.results import Reason, WriteResult
from store.schema import gateway_notices

MAX_BATCH = 500


@dataclass(frozen=True, slots=True)
class StoredNotice:
    gateway: str
    event_id: str
    kind: str
    payment_id: int | None
    payment_ref: str | None
    gateway_reference: str | None
    operation_reference: str | None
    amount_minor: int | None
    currency: str | None
    reason: str | None
    occurred_at: datetime
    received_at: datetime
    applied_at: datetime | None
    apply_attempts: int
    last_error: str | None
    payload: dict[str, Any]


def insert_notice(
    conn: Connection,
    *,
    gateway: str,
    event_id: str,
    kind: str,
    occurred_at: datetime,
    payload: Mapping[str, Any],
    payment_ref: str | None = None,
    gateway_reference: str | None = None,
    operation_reference: str | None = None,
    amount_minor: int | None = None,
    currency: str | None = None,
    reason: str | None = None,
) -> WriteResult:
    """Store the notice unless this gateway's event id is stored already (a redelivery): ALREADY_EXISTS."""
    row = conn.execute(
        insert(gateway_notices)
        .values(gateway=gateway, event_id=event_id, kind=kind, occurred_at=occurred_at, payload=dict(payload),
                payment_ref=payment_ref, gateway_reference=gateway_reference,
                operation_reference=operation_reference, amount_minor=amount_minor, currency=currency, reason=reason)
        .on_conflict_do_nothing(index_elements=[gateway_notices.c.gateway, gateway_notices.c.event_id])
        .returning(gateway_notices.c.event_id)
    ).first()
    return WriteResult(True, Reason.APPLIED) if row is not None else WriteResult(False, Reason.ALREADY_EXISTS)


def get_notice(conn: Connection, *, gateway: str, event_id: str, for_update: bool = False) -> StoredNotice | None:
    query = select(gateway_notices).where(gateway_notices.c.gateway == gateway,
                                          gateway_notices.c.event_id == event_id)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).mappings().first()
    return None if row is None else StoredNotice(**dict(row))


def notices_of_payment(conn: Connection, *, gateway: str, payment_ref: str,
                       gateway_reference: str | None = None) -> list[StoredNotice]:
    """The notices about one payment, oldest event first: by the payment id the gateway echoed, or by its
    reference at the gateway (events about modifications carry only that)."""
    matches = [gateway_notices.c.payment_ref == payment_ref]
    if gateway_reference is not None:
        matches.append(gateway_notices.c.gateway_reference == gateway_reference)
    rows = conn.execute(
        select(gateway_notices)
        .where(gateway_notices.c.gateway == gateway, or_(*matches))
        .order_by(gateway_notices.c.occurred_at, gateway_notices.c.received_at)
    ).mappings()
    return [StoredNotice(**dict(row)) for row in rows]


def unapplied_notices(conn: Connection, *, limit: int = 100,
                      payment_ids: Sequence[int] | None = None) -> list[tuple[str, str]]:
    """(gateway, event_id) of the oldest notices not applied yet (of these payments, if given), at most `limit`
    (<= MAX_BATCH)."""
    query = (
        select(gateway_notices.c.gateway, gateway_notices.c.event_id)
        .where(gateway_notices.c.applied_at.is_(None))
        .order_by(gateway_notices.c.received_at)
        .limit(min(max(limit, 1), MAX_BATCH))
    )
    if payment_ids is not None:
        query = query.where(gateway_notices.c.payment_id.in_(list(payment_ids)))
    rows = conn.execute(query).all()
    return [(r.gateway, r.event_id) for r in rows]


def mark_applied(conn: Connection, *, gateway: str, event_id: str, payment_id: int | None) -> None:
    conn.execute(
        update(gateway_notices)
        .where(gateway_notices.c.gateway == gateway, gateway_notices.c.event_id == event_id)
        .values(applied_at=func.now(), payment_id=payment_id, apply_attempts=gateway_notices.c.apply_attempts + 1,
                last_error=None)
    )


def mark_deferred(conn: Connection, *, gateway: str, event_id: str, payment_id: int | None, why: str) -> None:
    """Not applicable yet (the payment is unknown, or not where the event says): kept for a later attempt."""
    conn.execute(
        update(gateway_notices)
        .where(gateway_notices.c.gateway == gateway, gateway_notices.c.event_id == event_id)
        .values(payment_id=payment_id, apply_attempts=gateway_notices.c.apply_attempts + 1, last_error=why[:500])
    )
