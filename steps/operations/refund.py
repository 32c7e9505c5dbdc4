"""refund.asl.json, a refund as a small saga: ReserveRefund holds the amount in the ledger (pending: merchant payable
-> gateway clearing) -> RefundAtGateway asks the gateway under the refund's own idempotency key (an unknown outcome
is resolved by asking, never by guessing) -> PostRefund posts it, or FailOperation voids it when the gateway refused.
A refund the gateway accepted but has not decided (Adyen answers "received") ends the execution pending; its webhook
(saga.webhooks) or the status sync settles it later with `settle_refund`, the same code PostRefund and FailOperation
run.

The bound (refunds never exceed the captured amount) is the database's: the operation's row was admitted under it
(migration 0007); a refund that fails gives its amount back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from ledger.posting import post_refund, reserve_refund, void_refund
from steps import deps
from steps.errors import RefundFailed, TransientError
from steps.gateway.port import GatewayOutcomeUnknown, GatewayRejected, GatewayStatus, GatewayUnreachable
from steps.operations.state import announce, operation_of
from steps.payment_state import check_lease, claim, load
from steps.runtime import StepInput, StepResult, step
from store.operations import Operation, finish_operation, get_operation, record_gateway_reference
from store.payments import Payment, get_payment
from store.results import Reason

__all__ = ["settle_refund"]


def settle_refund(conn: Connection, payment: Payment, operation: Operation, *, succeeded: bool,
                  failure_code: str | None = None, failure_message: str | None = None,
                  gateway_reference: str | None = None) -> bool:
    """Record a refund's outcome in the caller's transaction (the payment row locked by the caller): the ledger posts
    or voids its reservation, the operation ends, the event is written. False when it was settled before (each
    write is idempotent by the refund's id, so settling twice, or a webhook racing the step, changes nothing)."""
    assert operation.kind == "refund", operation.kind
    if operation.status != "pending":
        return False
    if succeeded:
        result = post_refund(conn, payment_id=payment.id, operation_id=operation.id)
    else:
        result = void_refund(conn, payment_id=payment.id, operation_id=operation.id)
    if not result.in_effect and result.reason is not Reason.NO_RESERVATION:
        raise ValueError(f"refund {operation.id} of payment {payment.id}: the ledger says {result.reason}")
    if succeeded and result.reason is Reason.NO_RESERVATION:
        raise ValueError(f"refund {operation.id} went back at the gateway but was never reserved in the ledger")
    finish_operation(conn, operation_id=operation.id, status="succeeded" if succeeded else "failed",
                     failure_code=failure_code, failure_message=failure_message, gateway_reference=gateway_reference)
    ended = get_operation(conn, operation_id=operation.id)
    assert ended is not None
    announce(conn, payment, ended, "refund.succeeded" if succeeded else "refund.failed")
    return True


@step("ReserveRefund")
def _reserve(data: StepInput) -> StepResult:
    with deps.engine().begin() as conn:
        payment = claim(conn, data)
        operation = operation_of(conn, data, for_update=True)
        if operation.status != "pending":
            return {"refund": operation.status, "replayed": True}
        assert operation.amount_minor is not None, "a refund names its amount (migration 0007)"
        result = reserve_refund(conn, payment_id=payment.id, operation_id=operation.id,
                                amount_minor=operation.amount_minor)
    if result.reason is Reason.INSUFFICIENT_FUNDS:
        raise RefundFailed(f"the merchant's balance cannot cover a refund of {operation.amount_minor} "
                           f"{payment.currency}")
    if not result.in_effect:
        raise RefundFailed(f"payment {payment.id} cannot be refunded: {result.reason}")
    return {"transaction_id": result.transaction_id, "replayed": not result.applied}


handler = _reserve


def _ask(data: StepInput, payment: Payment, operation: Operation) -> tuple[GatewayStatus, str | None, str | None]:
    """(the refund's status at the gateway, the gateway's id of it, why it failed)."""
    gateway, key = deps.gateway(payment), str(payment.id)
    assert payment.gateway_reference is not None and operation.amount_minor is not None
    try:
        answer = gateway.refund(payment_id=key, gateway_reference=payment.gateway_reference,
                                amount_minor=operation.amount_minor, currency=payment.currency,
                                refund_id=str(operation.id))
    except GatewayOutcomeUnknown:
        snapshot = gateway.lookup_refund(payment_id=key, gateway_reference=payment.gateway_reference,
                                         refund_id=str(operation.id), operation_reference=operation.gateway_reference)
        if snapshot is None:  # the gateway never took it: the retry sends it again under the same key
            raise TransientError(f"refund {operation.id}: outcome unknown; retrying with the same key") from None
        return snapshot.status, snapshot.operation_reference, snapshot.failure_reason
    except GatewayUnreachable as error:
        raise TransientError(f"refund {operation.id}: gateway unavailable") from error
    except GatewayRejected as error:  # e.g. more than remains refundable at the gateway: nothing went back
        return GatewayStatus.REFUND_FAILED, None, f"{error.code}: {error}"
    return answer.status, answer.operation_reference, answer.decline_detail


@step("RefundAtGateway")
def _refund_at_gateway(data: StepInput) -> StepResult:
    with deps.engine().connect() as conn:
        payment = load(conn, data.payment_id)
        operation = operation_of(conn, data)
    if operation.status != "pending":
        return {"refund": operation.status, "replayed": True}
    check_lease(payment, data)
    status, reference, why = _ask(data, payment, operation)
    if status is GatewayStatus.REFUND_PENDING:
        # Its outcome may have arrived already (a webhook stored before we learned the refund's reference).
        assert payment.gateway_reference is not None
        known = deps.gateway(payment).lookup_refund(payment_id=str(payment.id),
                                                    gateway_reference=payment.gateway_reference,
                                                    refund_id=str(operation.id),
                                                    operation_reference=reference or operation.gateway_reference)
        if known is not None:
            status, reference, why = known.status, known.operation_reference or reference, known.failure_reason
    if reference is not None and reference != operation.gateway_reference:
        with deps.engine().begin() as conn:
            record_gateway_reference(conn, operation_id=operation.id, gateway_reference=reference)
    if status is GatewayStatus.REFUNDED:
        return {"refund": "succeeded", "gateway_reference": reference}
    if status is GatewayStatus.REFUND_PENDING:  # the gateway decides later: its webhook or the sync settles it
        return {"refund": "pending", "gateway_reference": reference}
    if status is GatewayStatus.REFUND_FAILED:
        raise RefundFailed(f"the gateway refused refund {operation.id}: {why or 'no reason given'}")
    raise TransientError(f"refund {operation.id}: unexpected gateway status {status}")


refund_at_gateway = _refund_at_gateway


@step("PostRefund")
def _post(data: StepInput) -> StepResult:
    with deps.engine().begin() as conn:
        payment = claim(conn, data)
        operation = operation_of(conn, data, for_update=True)
        settled = settle_refund(conn, payment, operation, succeeded=True)
    return {"refund": "succeeded", "replayed": not settled}


post_refund_step = _post


def settle_from_gateway(conn: Connection, operation_id: int, *, succeeded: bool, reason: str | None,
                        gateway_reference: str | None) -> bool:
    """A gateway's word on a refund (its webhook), outside any execution: settled under the payment's row lock, taken
    before the operation's as every step takes them (so the two never wait on each other in opposite orders)."""
    found = get_operation(conn, operation_id=operation_id)
    if found is None or found.status != "pending":
        return False
    payment = get_payment(conn, payment_id=found.payment_id, for_update=True)
    operation = get_operation(conn, operation_id=operation_id, for_update=True)
    assert payment is not None and operation is not None
    details: dict[str, Any] = {"gateway_reference": gateway_reference}
    if not succeeded:
        details.update(failure_code=RefundFailed.__name__, failure_message=reason or "the gateway refused the refund")
    return settle_refund(conn, payment, operation, succeeded=succeeded, **details)
