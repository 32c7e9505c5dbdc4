"""Reading a payment and moving its status, for every step: under the execution's lease, the optimistic lock and
the lifecycle (store.lifecycle), each of which PostgreSQL enforces too."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from core import observability
from core import telemetry_names as names
from steps.errors import BusinessError, ExecutionSuperseded, ServiceUnavailable, TransientError
from steps.runtime import StepInput
from store import lifecycle
from store.payments import Payment, get_payment, transition_payment
from store.results import Reason


def recorded_failure(payment: Payment) -> BusinessError:
    """The business error a finished, failed payment ended with: a step that meets such a payment (a replay, or a
    twin execution racing the one that failed it) raises this instead of acting on money."""
    for cls in BusinessError.__subclasses__():
        if cls.__name__ == payment.failure_code:
            return cls(payment.failure_message or cls.__name__)
    return ServiceUnavailable(payment.failure_message or "the payment failed earlier")


def refuse_if_failed(payment: Payment) -> None:
    if payment.status in lifecycle.FAILED:
        raise recorded_failure(payment)


def _superseded(payment: Payment, data: StepInput) -> ExecutionSuperseded:
    return ExecutionSuperseded(
        f"payment {payment.id} is now leased to {payment.lease_holder or 'a newer execution'} "
        f"(token {payment.lease_token}, this execution holds {data.lease_token}): this one ends without effect")


def load(conn: Connection, payment_id: int, *, for_update: bool = False) -> Payment:
    payment = get_payment(conn, payment_id=payment_id, for_update=for_update)
    if payment is None:
        raise ValueError(f"payment {payment_id} does not exist: the start handler writes it before the saga starts")
    return payment


def check_lease(payment: Payment, data: StepInput) -> None:
    """Before an effect outside PostgreSQL (a gateway call): act only while this execution holds the payment."""
    if payment.lease_token != data.lease_token:
        raise _superseded(payment, data)


def claim(conn: Connection, data: StepInput) -> Payment:
    """The payment, locked for this transaction, if this execution still holds its lease. Taking the lease anew is
    an UPDATE of the same row, so it waits for this transaction: what the step writes here, it writes as holder."""
    payment = load(conn, data.payment_id, for_update=True)
    check_lease(payment, data)
    return payment


def move(conn: Connection, payment: Payment, to_status: str, data: StepInput, **fields: Any) -> int:
    """Move to `to_status` if nobody changed the payment since it was read and this execution still holds it; the
    new version.

    A stale version means a duplicate delivery of this step raced us: raise TransientError so the state machine
    retries, and the retry, reading afresh, finds the effect recorded and returns it. A lost lease ends this
    execution without effect (ExecutionSuperseded). A move the lifecycle forbids is a bug, refused here and by the
    database alike.
    """
    if not lifecycle.allowed(payment.status, to_status):
        raise AssertionError(f"payment {payment.id}: {payment.status} -> {to_status} is not a lifecycle move")
    result = transition_payment(conn, payment_id=payment.id, expected_version=payment.version, to_status=to_status,
                                lease_token=data.lease_token, **fields)
    if result.reason is Reason.LEASE_LOST:
        raise _superseded(payment, data)
    if not result.applied:
        raise TransientError(
            f"payment {payment.id} changed concurrently (version {payment.version} -> {result.version}, "
            f"status {result.status}); retrying"
        )
    assert result.version is not None
    if to_status in lifecycle.FINAL and payment.status != to_status:
        # Counted by the move that ends the payment (its invocation publishes it only if the step returns).
        observability.count(names.PAYMENTS_FINISHED, **{names.DIMENSION_OUTCOME: str(to_status)})
    return result.version
