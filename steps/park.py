"""ParkPayment: forward recovery could not finish (after the pivot, or a compensation failed). The payment is parked
as needs_attention with the reason, for an engineer to replay; no money moves back because a backend was down."""

from __future__ import annotations

from steps import deps
from steps.payment_state import claim, move
from steps.runtime import StepInput, StepResult, step
from store import lifecycle
from store.lifecycle import PaymentStatus as Status


@step("ParkPayment")
def _park(data: StepInput) -> StepResult:
    problem = data.error or data.raw.get("compensation_error") or {}
    code = str(problem.get("Error", "Unknown")) if isinstance(problem, dict) else "Unknown"
    with deps.engine().begin() as conn:
        payment = claim(conn, data)
        if payment.status in lifecycle.EXECUTION_TERMINAL:  # finished (parking would lose that), or parked
            return {"status": payment.status, "parked": payment.status == Status.NEEDS_ATTENTION}
        move(conn, payment, Status.NEEDS_ATTENTION, data, failure_code=code,
             failure_message=f"parked after {code} while {payment.status}; replay finishes it")
    return {"status": "needs_attention", "parked": True}


handler = _park
