"""The payment as the API shows it to its merchant."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from store.disputes import Dispute
from store.operations import Operation
from store.payments import Payment


def dispute_body(dispute: Dispute) -> dict[str, Any]:
    return {
        "reference": dispute.reference,
        "status": dispute.status,
        "amount_minor": dispute.amount_minor,
        "currency": dispute.currency,
        "reason": dispute.reason,
        "opened_at": dispute.opened_at.isoformat(),
        "closed_at": dispute.closed_at.isoformat() if dispute.closed_at else None,
    }


def operation_body(operation: Operation) -> dict[str, Any]:
    """A capture, cancel or refund as the API shows it (a refund's `id` is what GET /v1/refunds/{id} takes)."""
    return {
        "id": str(operation.id),
        "object": operation.kind,
        "payment_id": str(operation.payment_id),
        "status": operation.status,
        "amount_minor": operation.amount_minor,
        "currency": operation.currency,
        "reason": operation.reason,
        "initiator": operation.initiator,
        "gateway_reference": operation.gateway_reference,
        "failure_code": operation.failure_code,
        "failure_message": operation.failure_message,
        "created_at": operation.created_at.isoformat(),
        "completed_at": operation.completed_at.isoformat() if operation.completed_at else None,
    }


def payment_body(payment: Payment, disputes: Sequence[Dispute] | None = None,
                 operations: Sequence[Operation] | None = None) -> dict[str, Any]:
    """The payment; with its disputes (chargebacks) and its operations (captures, cancels, refunds) where the caller
    read them (GET shows them; a start's answer, written before any can exist, does not)."""
    shown = _fields(payment)
    if disputes is not None:
        shown["disputes"] = [dispute_body(d) for d in disputes]
    if operations is not None:
        shown["refunded_minor"] = sum(o.amount_minor or 0 for o in operations
                                      if o.kind == "refund" and o.status == "succeeded")
        shown["operations"] = [operation_body(o) for o in operations]
    return shown


def _fields(payment: Payment) -> dict[str, Any]:
    # Ids are 63-bit: sent as decimal strings, which JSON parsers in browsers cannot round.
    return {
        "id": str(payment.id),
        "status": payment.status,
        "amount_minor": payment.amount_minor,
        "captured_amount_minor": payment.captured_amount_minor,
        "currency": payment.currency,
        "capture_mode": payment.capture_mode,
        "gateway": payment.gateway,
        "gateway_reference": payment.gateway_reference,
        "customer_reference": payment.customer_ref,
        "order_reference": payment.order_ref,
        "metadata": payment.metadata,
        "failure_code": payment.failure_code,
        "failure_message": payment.failure_message,
        "created_at": payment.created_at.isoformat(),
        "updated_at": payment.updated_at.isoformat(),
    }
