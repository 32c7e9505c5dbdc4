"""Reading a payment and moving its status under the optimistic lock, for every step."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from ledger.payments import Payment, get_payment, transition_payment
from steps.errors import BusinessError, ServiceUnavailable, TransientError

# Where a payment's story has ended: no step moves it again, except replay finishing a parked one.
FINAL_FAILED = frozenset({"rejected", "failed", "refunded"})


def recorded_failure(payment: Payment) -> BusinessError:
    """The business error a finished, failed payment ended with: a step that meets such a payment (a replay, or a
    twin execution racing the one that failed it) raises this instead of acting on money."""
    for cls in BusinessError.__subclasses__():
        if cls.__name__ == payment.failure_code:
            return cls(payment.failure_message or cls.__name__)
    return ServiceUnavailable(payment.failure_message or "the payment failed earlier")


def refuse_if_failed(payment: Payment) -> None:
    if payment.status in FINAL_FAILED:
        raise recorded_failure(payment)


def load(conn: Connection, payment_id: int, *, for_update: bool = False) -> Payment:
    payment = get_payment(conn, payment_id=payment_id, for_update=for_update)
    if payment is None:
        raise ValueError(f"payment {payment_id} does not exist: the start handler writes it before the saga starts")
    return payment


def move(conn: Connection, payment: Payment, to_status: str, **fields: Any) -> int:
    """Move to `to_status` if nobody changed the payment since it was read; the new version.

    A stale version means a duplicate delivery of this step (or a replay) raced us: raise TransientError so the
    state machine retries, and the retry, reading afresh, finds the effect recorded and returns it.
    """
    result = transition_payment(conn, payment_id=payment.id, expected_version=payment.version, to_status=to_status,
                                **fields)
    if not result.applied:
        raise TransientError(
            f"payment {payment.id} changed concurrently (version {payment.version} -> {result.version}, "
            f"status {result.status}); retrying"
        )
    assert result.version is not None
    return result.version
