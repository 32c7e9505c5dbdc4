"""ParkPayment: forward recovery could not finish (after the pivot, or a compensation failed). The payment is parked
as needs_attention with the reason, for an engineer to replay; no money moves back because a backend was down."""

from __future__ import annotations

from core import observability
from core import telemetry_names as names
from steps import deps
from steps.payment_state import claim, move
from steps.runtime import StepInput, StepResult, logger, step
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
    observability.count(names.PAYMENTS_PARKED)
    logger.warning("payment parked for an engineer's replay", extra={"error": code, "was": payment.status})
    return {"status": "needs_attention", "parked": True}


handler = _park
