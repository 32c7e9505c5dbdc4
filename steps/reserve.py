"""Step 2, ReserveBalance: a pending transfer in the ledger. Compensation: ReleaseReservation voids it."""

from __future__ import annotations

from ledger.posting import reserve, void
from steps import deps
from steps.payment_state import claim, move, refuse_if_failed
from steps.runtime import StepInput, StepResult, step
from store import lifecycle
from store.lifecycle import PaymentStatus as Status


@step("ReserveBalance")
def _reserve(data: StepInput) -> StepResult:
    with deps.engine().begin() as conn:
        payment = claim(conn, data)
        refuse_if_failed(payment)  # a twin execution failed it: hold nothing for a payment answered as failed
        assert payment.gateway is not None, "the start handler records the gateway"
        result = reserve(conn, payment_id=payment.id, merchant_id=payment.merchant_id, gateway=payment.gateway,
                         currency=payment.currency, amount_minor=payment.amount_minor)
        if result.applied and payment.status == Status.VALIDATED:
            move(conn, payment, Status.RESERVED, data)
    assert result.in_effect, f"reserve of payment {payment.id}: {result.reason}"
    return {"transaction_id": result.transaction_id, "amount_minor": result.amount_minor,
            "replayed": not result.applied}


handler = _reserve


@step("ReleaseReservation")
def _release(data: StepInput) -> StepResult:
    with deps.engine().begin() as conn:
        payment = claim(conn, data)
        result = void(conn, payment_id=payment.id)
        if result.in_effect and payment.status in lifecycle.RELEASABLE:  # released now, or by a run that died after it
            move(conn, payment, Status.RELEASED, data)
    # NO_RESERVATION (the step never took effect) and ALREADY_RESOLVED (it was posted) are no-ops.
    return {"released": result.in_effect, "replayed": not result.applied}


release_reservation = _release
