"""The payment as the API shows it to its merchant."""

from __future__ import annotations

from typing import Any

from store.payments import Payment


def payment_body(payment: Payment) -> dict[str, Any]:
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
