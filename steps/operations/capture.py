"""capture.asl.json: CaptureAuthorization asks the gateway to capture all or part of a manual-capture authorization
(the one capture key of the payment, so a retry or a replay never captures twice); CommitCapture posts the captured
part of the reservation (the rest released) and the fee, moves the payment to succeeded, ends the operation and
writes `payment.captured`, in one transaction. A capture the gateway refuses ends in FailOperation; past the gateway's
capture the operation recovers forward (ParkOperation, then the status sync), like the payment saga past its pivot."""

from __future__ import annotations

import dataclasses

from ledger.posting import post
from steps import deps
from steps.capture import capture_at_gateway
from steps.commit import fee_minor
from steps.errors import CaptureFailed, CommitRejected
from steps.operations.state import announce, operation_of
from steps.payment_state import check_lease, claim, load, move
from steps.runtime import StepInput, StepResult, step
from store.lifecycle import PaymentStatus as Status
from store.operations import finish_operation


@step("CaptureAuthorization")
def _capture(data: StepInput) -> StepResult:
    with deps.engine().connect() as conn:
        payment = load(conn, data.payment_id)
        operation = operation_of(conn, data)
    if operation.status != "pending":
        return {"action": operation.status, "replayed": True}
    if payment.captured_amount_minor is not None:  # captured before: the recorded result
        return {"action": "captured", "captured_amount_minor": payment.captured_amount_minor, "replayed": True}
    if payment.status == Status.CAPTURE_FAILED:
        # Refused before (FailOperation died before ending it): refused again, never asked again under the capture
        # key, whose stored answer may be the earlier acknowledgement (capture_submitted).
        raise CaptureFailed(f"the gateway refused the capture of payment {payment.id}")
    check_lease(payment, data)  # the gateway is asked only by the execution that holds the payment
    assert operation.amount_minor is not None, "a capture names its amount (migration 0007)"
    return capture_at_gateway(data, deps.gateway(payment), payment, operation.amount_minor)


handler = _capture


@step("CommitCapture")
def _commit(data: StepInput) -> StepResult:
    with deps.engine().begin() as conn:
        payment = claim(conn, data)
        operation = operation_of(conn, data, for_update=True)
        if operation.status != "pending":
            return {"status": operation.status, "replayed": True}
        captured = payment.captured_amount_minor
        if captured is None:
            raise ValueError(f"payment {payment.id} reached CommitCapture with nothing captured ({payment.status})")
        result = post(conn, payment_id=payment.id, amount_minor=captured,
                      fee_minor=fee_minor(captured, payment.currency))
        if not result.in_effect:
            raise CommitRejected(f"the ledger refused to post the capture of payment {payment.id}: {result.reason}")
        for to_status in (Status.COMMITTED, Status.SUCCEEDED):
            if payment.status not in (Status.SUCCEEDED, to_status):
                version = move(conn, payment, to_status, data)
                payment = dataclasses.replace(payment, status=to_status, version=version)
        finish_operation(conn, operation_id=operation.id, status="succeeded")
        announce(conn, load(conn, payment.id), operation, "payment.captured")
    return {"status": "succeeded", "captured_amount_minor": captured, "fee_minor": result.fee_minor,
            "transaction_id": result.transaction_id}


commit_capture = _commit
