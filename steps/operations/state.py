"""What the operations' steps share: reading the execution's operation, and announcing an operation's outcome in the
transaction that records it (the outbox, DESIGN 8)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection
from ulid import ULID

from steps.runtime import StepInput
from store.operations import Operation, get_operation
from store.outbox import insert_event
from store.payments import Payment

__all__ = ["announce", "event_payload", "operation_of"]


def operation_of(conn: Connection, data: StepInput, *, for_update: bool = False) -> Operation:
    """The operation this execution runs; ValueError when the input names none, or one of another payment."""
    if data.operation_id is None:
        raise ValueError(f"an operation's execution needs operation_id in its input (payment {data.payment_id})")
    found = get_operation(conn, operation_id=data.operation_id, for_update=for_update)
    if found is None or found.payment_id != data.payment_id:
        raise ValueError(f"operation {data.operation_id} is not one of payment {data.payment_id}")
    return found


def event_payload(payment: Payment, operation: Operation, event_type: str) -> dict[str, Any]:
    """The event's data: the payment's figures and the operation's (ids as decimal strings, amounts in minor units)."""
    return {"type": event_type, "payment_id": str(payment.id), "merchant_id": payment.merchant_id,
            "amount_minor": payment.amount_minor, "captured_amount_minor": payment.captured_amount_minor,
            "currency": payment.currency, "order_reference": payment.order_ref,
            "operation": {"id": str(operation.id), "kind": operation.kind, "amount_minor": operation.amount_minor,
                          "reason": operation.reason, "initiator": operation.initiator,
                          "failure_code": operation.failure_code}}


def announce(conn: Connection, payment: Payment, operation: Operation, event_type: str) -> None:
    """Write the operation's event to the outbox (once per operation and type); the relay publishes it."""
    insert_event(conn, event_id=str(ULID()), payment_id=payment.id, event_type=event_type,
                 payload=event_payload(payment, operation, event_type), operation_id=operation.id)
