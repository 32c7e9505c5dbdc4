"""Payment records: insert, read, and status transitions under the optimistic lock on `version`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects.postgresql import insert

from store.lifecycle import PAYMENT_STATUSES
from store.results import Reason, TransitionResult, WriteResult
from store.schema import payments


@dataclass(frozen=True, slots=True)
class Payment:
    id: int
    merchant_id: str
    amount_minor: int
    currency: str
    captured_amount_minor: int | None
    capture_mode: str
    status: str
    version: int
    gateway: str | None
    gateway_reference: str | None
    customer_ref: str | None
    order_ref: str | None
    payment_method_token: str | None
    metadata: dict[str, Any]
    fraud_score: int | None
    failure_code: str | None
    failure_message: str | None
    lease_token: int
    refund_reserved_minor: int  # refunds pending or succeeded (migration 0007's trigger keeps it)
    lease_holder: str | None
    lease_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


def insert_payment(
    conn: Connection,
    *,
    payment_id: int,
    merchant_id: str,
    amount_minor: int,
    currency: str,
    capture_mode: str = "automatic",
    gateway: str | None = None,
    customer_ref: str | None = None,
    order_ref: str | None = None,
    payment_method_token: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    status: str = "created",
) -> WriteResult:
    """Insert the payment (id is the caller's Snowflake id); ALREADY_EXISTS, writing nothing, if the id is taken."""
    row = conn.execute(
        insert(payments)
        .values(
            id=payment_id,
            merchant_id=merchant_id,
            amount_minor=amount_minor,
            currency=currency,
            capture_mode=capture_mode,
            gateway=gateway,
            customer_ref=customer_ref,
            order_ref=order_ref,
            payment_method_token=payment_method_token,
            metadata=dict(metadata or {}),
            status=status,
        )
        .on_conflict_do_nothing(index_elements=[payments.c.id])
        .returning(payments.c.id)
    ).first()
    return WriteResult(True, Reason.APPLIED) if row is not None else WriteResult(False, Reason.ALREADY_EXISTS)


def get_payment(conn: Connection, *, payment_id: int, for_update: bool = False) -> Payment | None:
    query = select(payments).where(payments.c.id == payment_id)
    if for_update:
        query = query.with_for_update(key_share=True)
    row = conn.execute(query).mappings().first()
    return None if row is None else Payment(**dict(row))


def transition_payment(
    conn: Connection,
    *,
    payment_id: int,
    expected_version: int,
    to_status: str,
    captured_amount_minor: int | None = None,
    gateway_reference: str | None = None,
    fraud_score: int | None = None,
    failure_code: str | None = None,
    failure_message: str | None = None,
    lease_token: int | None = None,
) -> TransitionResult:
    """Move the payment to `to_status` if its version is still `expected_version` (and, given a lease token, if that
    token still holds the payment), bumping the version.

    The optional fields are set only when given. A stale version (someone moved it since it was read) writes
    nothing and returns STALE_VERSION with the current version and status; a token that a newer execution replaced
    writes nothing and returns LEASE_LOST. The database refuses a move the lifecycle does not allow.
    """
    if to_status not in PAYMENT_STATUSES:
        raise ValueError(f"unknown payment status {to_status!r}")
    changes: dict[str, object] = {"status": to_status}
    optional = {
        "captured_amount_minor": captured_amount_minor,
        "gateway_reference": gateway_reference,
        "fraud_score": fraud_score,
        "failure_code": failure_code,
        "failure_message": failure_message,
    }
    changes.update({name: value for name, value in optional.items() if value is not None})
    fenced = [] if lease_token is None else [payments.c.lease_token == lease_token]
    row = conn.execute(
        update(payments)
        .where(payments.c.id == payment_id, payments.c.version == expected_version, *fenced)
        .values(**changes, version=payments.c.version + 1, updated_at=func.now())
        .returning(payments.c.version, payments.c.status)
    ).first()
    if row is not None:
        return TransitionResult(True, Reason.APPLIED, payment_id, expected_version, int(row.version), row.status)
    current = conn.execute(
        select(payments.c.version, payments.c.status, payments.c.lease_token).where(payments.c.id == payment_id)
    ).first()
    if current is None:
        return TransitionResult(False, Reason.PAYMENT_NOT_FOUND, payment_id, expected_version, None, None)
    reason = Reason.STALE_VERSION if lease_token is None or current.lease_token == lease_token else Reason.LEASE_LOST
    return TransitionResult(False, reason, payment_id, expected_version, int(current.version), current.status)
