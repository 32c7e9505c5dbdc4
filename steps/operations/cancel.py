"""cancel.asl.json: CancelAuthorization voids a manual-capture authorization at the gateway (the payment's one void
key), then releases the reservation, moves the payment to canceled, ends the operation and writes `payment.canceled`,
in one transaction. Nothing was captured, so there is nothing to compensate: a failure is retried, then parked."""

from __future__ import annotations

from ledger.posting import void
from steps import deps
from steps.authorize import cancel_at_gateway
from steps.operations.state import announce, operation_of
from steps.payment_state import check_lease, claim, load, move
from steps.runtime import StepInput, StepResult, step
from store.lifecycle import PaymentStatus as Status
from store.operations import finish_operation


@step("CancelAuthorization")
def _cancel(data: StepInput) -> StepResult:
    with deps.engine().connect() as conn:
        payment = load(conn, data.payment_id)
        operation = operation_of(conn, data)
    if operation.status != "pending":
        return {"status": operation.status, "replayed": True}
    outcome = "canceled_before"
    if payment.status != Status.CANCELED:
        check_lease(payment, data)
        # Raises CapturedAtGateway if money was captured (capture and cancel exclude each other, so only a bug or a
        # capture made outside paysaga gets here): the operation is parked, never a canceled payment with money taken.
        outcome = cancel_at_gateway(deps.gateway(payment), str(payment.id), payment.gateway_reference)
    with deps.engine().begin() as conn:
        payment = claim(conn, data)
        operation = operation_of(conn, data, for_update=True)
        if operation.status != "pending":
            return {"status": operation.status, "replayed": True}
        void(conn, payment_id=payment.id)
        if payment.status != Status.CANCELED:
            move(conn, payment, Status.CANCELED, data)
        finish_operation(conn, operation_id=operation.id, status="succeeded")
        announce(conn, load(conn, payment.id), operation, "payment.canceled")
    return {"status": "canceled", "gateway": outcome}


handler = _cancel
