"""Operations after checkout (a capture, a cancel, a refund): their records. What bounds them is the database's
(migration 0007: capture and cancel exclude each other, refunds stay within the captured amount, a status moves once
from pending); this module reads and writes the rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects.postgresql import insert

from store.results import Reason, WriteResult
from store.schema import OPERATION_KINDS, OPERATION_STATUSES, payment_operations

__all__ = ["Operation", "finish_operation", "get_operation", "insert_operation", "operations_of_payment",
           "pending_operations", "record_gateway_reference"]

_OPS = payment_operations


@dataclass(frozen=True, slots=True)
class Operation:
    id: int
    payment_id: int
    merchant_id: str
    kind: str  # store.schema.OPERATION_KINDS
    status: str  # store.schema.OPERATION_STATUSES
    amount_minor: int | None  # None for a cancel
    currency: str
    reason: str | None
    initiator: str  # "merchant" | "expiry_policy"
    gateway_reference: str | None
    failure_code: str | None
    failure_message: str | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


def insert_operation(conn: Connection, *, operation_id: int, payment_id: int, merchant_id: str, kind: str,
                     amount_minor: int | None, currency: str, reason: str | None = None,
                     initiator: str = "merchant") -> WriteResult:
    """Write the operation, pending; ALREADY_EXISTS (writing nothing) if the id is taken. The database refuses what
    its rules forbid (IntegrityError: a second capture or cancel, refunds beyond the captured amount, ...)."""
    assert kind in OPERATION_KINDS, kind
    row = conn.execute(
        insert(_OPS)
        .values(id=operation_id, payment_id=payment_id, merchant_id=merchant_id, kind=kind, amount_minor=amount_minor,
                currency=currency, reason=reason, initiator=initiator)
        .on_conflict_do_nothing(index_elements=[_OPS.c.id])
        .returning(_OPS.c.id)
    ).first()
    return WriteResult(True, Reason.APPLIED) if row is not None else WriteResult(False, Reason.ALREADY_EXISTS)


def get_operation(conn: Connection, *, operation_id: int, for_update: bool = False) -> Operation | None:
    query = select(_OPS).where(_OPS.c.id == operation_id)
    if for_update:
        query = query.with_for_update(key_share=True)
    row = conn.execute(query).mappings().first()
    return None if row is None else Operation(**dict(row))


def operations_of_payment(conn: Connection, *, payment_id: int, kind: str | None = None) -> list[Operation]:
    """The payment's operations, oldest first."""
    query = select(_OPS).where(_OPS.c.payment_id == payment_id).order_by(_OPS.c.created_at, _OPS.c.id)
    if kind is not None:
        query = query.where(_OPS.c.kind == kind)
    return [Operation(**dict(row)) for row in conn.execute(query).mappings()]


def record_gateway_reference(conn: Connection, *, operation_id: int, gateway_reference: str) -> None:
    """The gateway's id of the operation (a refund's), once known; a pending operation only."""
    conn.execute(update(_OPS).where(_OPS.c.id == operation_id, _OPS.c.status == "pending")
                 .values(gateway_reference=gateway_reference, updated_at=func.now()))


def finish_operation(conn: Connection, *, operation_id: int, status: str, failure_code: str | None = None,
                     failure_message: str | None = None, gateway_reference: str | None = None) -> bool:
    """Move a pending operation to its outcome; False (writing nothing) when it was decided before. A failed refund
    gives its amount back to what may be refunded (migration 0007's trigger)."""
    assert status in OPERATION_STATUSES and status != "pending", status
    values: dict[str, object] = {"status": status, "failure_code": failure_code, "failure_message": failure_message,
                                 "updated_at": func.now(), "completed_at": func.now()}
    if gateway_reference is not None:
        values["gateway_reference"] = gateway_reference
    row = conn.execute(update(_OPS).where(_OPS.c.id == operation_id, _OPS.c.status == "pending").values(**values)
                       .returning(_OPS.c.id)).first()
    return row is not None


def pending_operations(conn: Connection, *, untouched_for_ms: int, limit: int) -> list[Operation]:
    """Operations still pending after `untouched_for_ms` (by the database's clock), oldest first: what the status
    sync resolves."""
    query = (select(_OPS).where(_OPS.c.status == "pending",
                                _OPS.c.updated_at < func.clock_timestamp()
                                - func.make_interval(0, 0, 0, 0, 0, 0, untouched_for_ms / 1000))
             .order_by(_OPS.c.updated_at).limit(limit))
    return [Operation(**dict(row)) for row in conn.execute(query).mappings()]
