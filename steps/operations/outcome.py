"""How an operation ends when it cannot succeed. FailOperation: the gateway refused it (a business outcome): a
refund's reservation is released and `refund.failed` written; a refused capture ends the authorization (voided at
the gateway, the reservation released, the payment canceled, `payment.canceled`), since a merchant cannot capture it
again. ParkOperation: infrastructure stayed down through every retry: the operation stays pending, untouched, for the
status sync (saga.sync) to run again; nothing is undone because a backend was down."""

from __future__ import annotations

from ledger.posting import void
from steps import deps
from steps.authorize import cancel_at_gateway
from steps.operations.refund import settle_refund
from steps.operations.state import announce, operation_of
from steps.payment_state import check_lease, claim, load, move
from steps.runtime import StepInput, StepResult, logger, step
from steps.validate import outcome_of
from store.lifecycle import PaymentStatus as Status
from store.operations import finish_operation, get_operation

# A refused capture leaves the payment in one of these; FailOperation cancels it from there.
_CAPTURE_REFUSED_FROM = frozenset({Status.AUTHORIZED, Status.CAPTURE_FAILED})


def _problem(data: StepInput) -> tuple[str, str]:
    """(error name, message) of what the Catch put at $.error: a business outcome by its name, anything else as
    ServiceUnavailable; only Lambda's errorMessage is kept, never its stack trace (the merchant reads it)."""
    return outcome_of(data.error)


@step("FailOperation")
def _fail(data: StepInput) -> StepResult:
    code, cause = _problem(data)
    with deps.engine().connect() as conn:
        payment = load(conn, data.payment_id)
        operation = operation_of(conn, data)
    if operation.status != "pending":
        return {"status": operation.status, "error": operation.failure_code or code, "cause": cause, "replayed": True}
    if operation.kind == "capture" and payment.status in _CAPTURE_REFUSED_FROM:
        check_lease(payment, data)
        cancel_at_gateway(deps.gateway(payment), str(payment.id), payment.gateway_reference)
    with deps.engine().begin() as conn:
        payment = claim(conn, data)
        operation = operation_of(conn, data, for_update=True)
        if operation.status != "pending":
            return {"status": operation.status, "error": operation.failure_code or code, "cause": cause,
                    "replayed": True}
        if operation.kind == "refund":
            settle_refund(conn, payment, operation, succeeded=False, failure_code=code, failure_message=cause)
            return {"status": "failed", "error": code, "cause": cause}
        finish_operation(conn, operation_id=operation.id, status="failed", failure_code=code, failure_message=cause)
        if operation.kind == "capture" and payment.status in _CAPTURE_REFUSED_FROM:
            void(conn, payment_id=payment.id)
            move(conn, payment, Status.CANCELED, data, failure_code=code, failure_message=cause)
            ended = get_operation(conn, operation_id=operation.id)
            assert ended is not None
            announce(conn, load(conn, payment.id), ended, "payment.canceled")
    return {"status": "failed", "error": code, "cause": cause}


fail_operation = _fail


@step("ParkOperation")
def _park(data: StepInput) -> StepResult:
    code, cause = _problem(data)
    logger.warning("operation left pending for the status sync", extra={"operation_id": str(data.operation_id),
                                                                       "error": code, "cause": cause})
    return {"parked": True, "error": code}


park_operation = _park
