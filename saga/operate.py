"""The operations after checkout, the use case behind POST /v1/payments/{id}/capture, .../cancel and .../refunds:
the merchant's payment -> the idempotency gate (the same semantics as the start: the key's record holds the
operation's id) -> the operation admitted under the payment's row lock -> its own state machine (capture.asl.json,
cancel.asl.json, refund.asl.json) under the payment's lease -> the answer, stored for the key. It knows nothing of
HTTP: the handler passes the function that renders an operation as its answer and maps refusals to responses.

Admission checks each rule here, to answer with a clear error; the database checks them again (migration 0007), so
two requests racing past the checks cannot both win: the loser's insert is refused and answered as if the check had
seen the winner. A refused request stores nothing for its key (a retry with the same key is judged afresh).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from saga import idempotency
from saga.bootstrap import Services
from saga.execution import ExecutionRun
from saga.start import (
    SUPERSEDED,
    Answered,
    BackendUnavailable,
    StartRefused,
    StillRunning,
    answer_within,
    open_key,
    run_and_answer,
)
from steps.contract import ExecutionInput
from steps.registry import Workflow
from store.disputes import disputes_of_payment
from store.lifecycle import PaymentStatus as Status
from store.merchants import Merchant
from store.operations import Operation, get_operation, insert_operation, operations_of_payment
from store.payments import Payment, get_payment

__all__ = ["OperationRefused", "OperationRequest", "PaymentNotFound", "RenderOperation", "admit", "operate"]

# How an ended operation reads as the stored answer.
RenderOperation = Callable[[Payment, Operation], idempotency.StoredResponse]
# Past the pivot at checkout: a capture or cancel meets one of these as "already captured".
_CAPTURED = frozenset({Status.CAPTURE_SUBMITTED, Status.CAPTURED, Status.COMMITTED, Status.SUCCEEDED})
# What counts against what may still be refunded: a chargeback the gateway took back (open or lost).
_DISPUTE_HOLDS = frozenset({"open", "lost"})


@dataclass(frozen=True)
class OperationRequest:
    kind: Workflow  # CAPTURE, CANCEL or REFUND
    amount_minor: int | None  # a capture without one captures all; a cancel has none; a refund always has one
    currency: str | None  # when given, the payment's
    reason: str | None = None

    def __post_init__(self) -> None:
        assert self.kind is not Workflow.PAYMENT
        assert (self.kind is Workflow.REFUND) <= (self.amount_minor is not None)
        assert (self.kind is Workflow.CANCEL) <= (self.amount_minor is None)


class PaymentNotFound(StartRefused):
    """No such payment, or another merchant's (which does not exist for this one)."""


class OperationRefused(StartRefused):
    """The operation breaks a rule: `status` (409 for the payment's state, 422 for an amount or currency), a stable
    error name, a message naming what is wrong, and the request field at fault."""

    def __init__(self, status: int, error: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.field = status, error, message, field


def _refused_state(payment: Payment, kind: Workflow) -> OperationRefused | None:
    """Why the payment's state refuses a capture or cancel, or None."""
    what = kind.value
    if payment.capture_mode != "manual":
        return OperationRefused(409, "PaymentNotManualCapture",
                                f"payment {payment.id} was captured at checkout (capture_mode automatic): "
                                f"there is nothing to {what}; refund it instead")
    if payment.status == Status.CANCELED:
        return OperationRefused(409, "PaymentCanceled", f"payment {payment.id} was canceled: it cannot be {what}d")
    if payment.status in _CAPTURED:
        return OperationRefused(409, "PaymentAlreadyCaptured",
                                f"payment {payment.id} is already captured ({payment.status}): it cannot be {what}d")
    if payment.status != Status.AUTHORIZED:
        return OperationRefused(409, "PaymentNotAuthorized",
                                f"payment {payment.id} is {payment.status}, not authorized: it cannot be {what}d")
    return None


def _refused_refund(conn: Connection, payment: Payment, amount_minor: int) -> OperationRefused | None:
    if payment.captured_amount_minor is None or payment.status in (Status.AUTHORIZED, Status.CANCELED):
        return OperationRefused(409, "PaymentNotCaptured",
                                f"payment {payment.id} is {payment.status} and was never captured: nothing to refund")
    if payment.status != Status.SUCCEEDED:
        return OperationRefused(409, "PaymentNotRefundable",
                                f"payment {payment.id} is {payment.status}: only a succeeded payment is refunded")
    disputed = sum(d.amount_minor for d in disputes_of_payment(conn, payment_id=payment.id)
                   if d.status in _DISPUTE_HOLDS)
    remaining = payment.captured_amount_minor - payment.refund_reserved_minor - disputed
    if amount_minor > remaining:
        return OperationRefused(422, "AmountExceedsRefundable",
                                f"amount_minor {amount_minor} exceeds what remains refundable of payment {payment.id}: "
                                f"{max(remaining, 0)} {payment.currency}", "amount_minor")
    return None


def admit(conn: Connection, *, operation_id: int, payment_id: int, merchant: Merchant, request: OperationRequest,
          initiator: str = "merchant") -> Operation:
    """Write the operation, pending, if the payment allows it now (the payment's row locked first, as every step
    locks it); the operation written before under this id (a resumed key) as it is; raise OperationRefused."""
    payment = get_payment(conn, payment_id=payment_id, for_update=True)
    if payment is None or payment.merchant_id != merchant.id:
        raise PaymentNotFound(f"no payment {payment_id}")
    earlier = get_operation(conn, operation_id=operation_id)
    if earlier is not None:
        assert earlier.payment_id == payment_id and earlier.kind == request.kind.value, earlier
        return earlier
    if request.currency is not None and request.currency != payment.currency:
        raise OperationRefused(422, "CurrencyMismatch",
                               f"currency {request.currency} is not payment {payment.id}'s ({payment.currency})",
                               "currency")
    amount_minor = request.amount_minor
    if request.kind is Workflow.REFUND:
        assert amount_minor is not None
        refused = _refused_refund(conn, payment, amount_minor)
    else:
        refused = _refused_state(payment, request.kind)
        if refused is None and request.kind is Workflow.CAPTURE:
            amount_minor = amount_minor or payment.amount_minor
            if amount_minor > payment.amount_minor:
                refused = OperationRefused(422, "AmountExceedsAuthorized",
                                           f"amount_minor {amount_minor} exceeds the authorized {payment.amount_minor} "
                                           f"{payment.currency} of payment {payment.id}", "amount_minor")
        if refused is None:
            refused = _exclusive(conn, payment)
    if refused is not None:
        raise refused
    insert_operation(conn, operation_id=operation_id, payment_id=payment.id, merchant_id=merchant.id,
                     kind=request.kind.value, amount_minor=amount_minor, currency=payment.currency,
                     reason=request.reason, initiator=initiator)
    written = get_operation(conn, operation_id=operation_id)
    assert written is not None
    return written


def _exclusive(conn: Connection, payment: Payment) -> OperationRefused | None:
    """A capture or cancel of the payment already under way (or done): capture and cancel exclude each other."""
    for other in operations_of_payment(conn, payment_id=payment.id):
        if other.kind in ("capture", "cancel") and other.status != "failed":
            return OperationRefused(409, "CaptureOrCancelExists",
                                    f"payment {payment.id} already has a {other.kind} ({other.status}, operation "
                                    f"{other.id}): capture and cancel exclude each other")
    return None


def _refusal_of(error: IntegrityError, request: OperationRequest) -> OperationRefused:
    """The database refused what the checks let through: a request racing another. Answered as the check would
    have answered, had it seen the winner."""
    text = str(error.orig)
    if "refunds_within_captured" in text:
        return OperationRefused(422, "AmountExceedsRefundable",
                                "amount_minor exceeds what remains refundable (a concurrent refund took it)",
                                "amount_minor")
    if "one_capture_or_cancel" in text:
        return OperationRefused(409, "CaptureOrCancelExists",
                                "a concurrent capture or cancel of this payment was accepted first: capture and "
                                "cancel exclude each other")
    return OperationRefused(409, "PaymentStateChanged",
                            f"the payment changed while the {request.kind.value} was admitted; look at it and retry")


def _answer(services: Services, operation_id: int, render: RenderOperation,
            run: ExecutionRun | None = None) -> idempotency.StoredResponse | None:
    """The answer of an operation whose execution ended, or None (unknown operation, or its execution was
    superseded before deciding: then it runs again)."""
    with services.engine.connect() as conn:
        operation = get_operation(conn, operation_id=operation_id)
        payment = None if operation is None else get_payment(conn, payment_id=operation.payment_id)
    if operation is None or payment is None:
        return None
    if operation.status == "pending" and run is not None and run.response is not None \
            and run.response.get("error") == SUPERSEDED:
        return None
    return render(payment, operation)


def _final_answer(services: Services, operation_id: int, render: RenderOperation) -> idempotency.StoredResponse | None:
    try:
        with services.engine.connect() as conn:
            operation = get_operation(conn, operation_id=operation_id)
    except SQLAlchemyError:
        return None
    if operation is None or operation.status == "pending":
        return None  # still running (or written by a holder that died: after the key's expiry a retry resumes it)
    return _answer(services, operation_id, render)


def operate(services: Services, *, merchant: Merchant, payment_id: int, key: str, fingerprint: str,
            request: OperationRequest, render: RenderOperation,
            monotonic: Callable[[], float] = time.monotonic) -> Answered | StillRunning:
    """Run the operation the key names (new, resumed or finished) and answer it within the settings' answer budget
    (StillRunning past it); raise StartRefused otherwise (PaymentNotFound, OperationRefused, ...)."""
    deadline = monotonic() + services.settings.start_answer_budget_ms / 1_000
    try:
        with services.engine.connect() as conn:
            payment = get_payment(conn, payment_id=payment_id)
    except SQLAlchemyError as error:
        raise BackendUnavailable("the database") from error
    if payment is None or payment.merchant_id != merchant.id:
        raise PaymentNotFound(f"no payment {payment_id}")
    decision = open_key(services, merchant=merchant, key=key, fingerprint=fingerprint,
                        final_answer=lambda operation_id: _final_answer(services, operation_id, render))
    if isinstance(decision, Answered):
        return decision
    operation_id, token = decision.payment_id, decision.token
    try:
        with services.engine.begin() as conn:
            admit(conn, operation_id=operation_id, payment_id=payment_id, merchant=merchant, request=request)
    except StartRefused:
        services.gate.abandon(merchant.id, key, token)  # nothing was written: the key is free for any request
        raise
    except IntegrityError as error:
        services.gate.abandon(merchant.id, key, token)
        raise _refusal_of(error, request) from error
    except SQLAlchemyError as error:
        services.gate.release(merchant.id, key, token)  # let the retry resume at once, same operation id
        raise BackendUnavailable("the database") from error
    saga_input = ExecutionInput(payment_id=payment_id, merchant_id=merchant.id, operation_id=operation_id)

    def finish() -> Answered:
        return run_and_answer(services, merchant=merchant, key=key, token=token, saga_input=saga_input,
                              render=lambda run: _answer(services, operation_id, render, run), workflow=request.kind)

    return answer_within(services, finish, payment_id=payment_id, deadline=deadline, monotonic=monotonic)
