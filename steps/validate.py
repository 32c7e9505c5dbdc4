"""Step 1, ValidatePayment: business rules and the fraud score. Compensation: RejectPayment."""

from __future__ import annotations

import json

from sqlalchemy import Connection
from ulid import ULID

from core import observability
from core import telemetry_names as names
from steps import deps
from steps.commit import event_payload
from steps.errors import (
    BUSINESS_ERRORS,
    RETRYABLE_FAILURES,
    AmountAboveLimit,
    CurrencyNotSupported,
    ExecutionSuperseded,
    FraudRejected,
    ServiceUnavailable,
)
from steps.fraud import assess, decision_for
from steps.payment_state import claim, move, refuse_if_failed
from steps.runtime import StepInput, StepResult, step
from store import lifecycle
from store.lifecycle import PaymentStatus as Status
from store.merchants import get_merchant
from store.outbox import insert_event
from store.payments import Payment

# Outcomes of validation: the payment is refused outright ("rejected"), not failed along the way.
_REJECTIONS = frozenset({"FraudRejected", "CurrencyNotSupported", "AmountAboveLimit", "ValidationRejected"})


@step("ValidatePayment")
def _validate(data: StepInput) -> StepResult:
    with deps.engine().begin() as conn:
        payment = claim(conn, data)
        refuse_if_failed(payment)  # a replay of a finished payment ends where it ended
        if payment.fraud_score is not None:  # validated before: the recorded result
            return {"decision": decision_for(payment.fraud_score), "fraud_score": payment.fraud_score}
        merchant = get_merchant(conn, merchant_id=payment.merchant_id)
        assert merchant is not None, "payments.merchant_id is a foreign key"
        if payment.currency not in merchant.currencies:
            raise CurrencyNotSupported(f"merchant {merchant.id} does not accept {payment.currency}")
        if payment.amount_minor > merchant.max_amount_minor:
            raise AmountAboveLimit(
                f"{payment.amount_minor} exceeds the merchant's limit of {merchant.max_amount_minor} minor units"
            )
        assessment = assess(conn, payment)
        if assessment.decision == "reject":
            raise FraudRejected(f"fraud score {assessment.score}: " + "; ".join(assessment.reasons))
        move(conn, payment, Status.VALIDATED, data, fraud_score=assessment.score)
    return {"decision": assessment.decision, "fraud_score": assessment.score, "reasons": list(assessment.reasons)}


handler = _validate


def outcome_of(error: dict[str, object] | None) -> tuple[str, str]:
    """(business error name, cause) for what a Catch recorded at $.error."""
    name = str((error or {}).get("Error", "ServiceUnavailable"))
    cause = str((error or {}).get("Cause", ""))
    if name in BUSINESS_ERRORS:
        return name, _message_of(cause) or name
    return ServiceUnavailable.__name__, f"{name}: {_message_of(cause) or 'a backend stayed unavailable'}"


def _message_of(cause: str) -> str:
    """Lambda's Cause is JSON with errorMessage; keep only the message (never a stack trace) for the merchant."""
    try:
        parsed = json.loads(cause)
    except (ValueError, TypeError):
        return cause[:500]
    if isinstance(parsed, dict):
        return str(parsed.get("errorMessage", ""))[:500]
    return cause[:500]


def _announce_failure(conn: Connection, payment: Payment, status: str, error: str) -> None:
    """The payment.failed outbox row, in the transaction that records the failure (the outbox relay publishes it).

    Nothing is announced that the ledger does not hold: a rejected or failed payment has no posted capture (the
    payments table refuses a captured amount in those statuses, and RejectPayment runs after every compensation left
    nothing live: the reservation released, the authorization voided); a refunded one had its capture given back in
    full, the ledger's reversing entries netting it to zero before this step runs. `retryable`: the failure was not
    the card's (steps.errors.RETRYABLE_FAILURES), so the customer may try again."""
    insert_event(conn, event_id=str(ULID()), payment_id=payment.id, event_type="payment.failed",
                 payload={**event_payload(payment, "payment.failed", 0), "status": status, "error": error,
                          "retryable": error in RETRYABLE_FAILURES})


@step("RejectPayment")
def _reject(data: StepInput) -> StepResult:
    """The last compensation: record the business outcome on the payment. Idempotent: a second run keeps the first.

    It fails a payment only where every earlier compensation left nothing live (lifecycle.REJECTABLE). Anywhere else,
    past the pivot above all, another execution is the one moving the payment: this one ends without effect and
    never moves a payment the gateway may have captured backwards (the database refuses that move too)."""
    with deps.engine().begin() as conn:
        payment = claim(conn, data)
        if payment.status in lifecycle.FAILED and payment.failure_code:
            return {"error": payment.failure_code, "cause": payment.failure_message or payment.failure_code}
        error, cause = outcome_of(data.error)
        if payment.status == Status.REFUNDED:  # captured, then given back in full: keep it refunded, record why
            move(conn, payment, Status.REFUNDED, data, failure_code=error, failure_message=cause)
            _announce_failure(conn, payment, Status.REFUNDED, error)
            observability.count(names.PAYMENTS_DECLINED, **{names.DIMENSION_ERROR: error})
            return {"error": error, "cause": cause}
        if payment.status not in lifecycle.REJECTABLE or payment.captured_amount_minor is not None:
            raise ExecutionSuperseded(
                f"payment {payment.id} is {payment.status}: it is not this compensation's to fail ({error} leaves it)")
        failed = Status.REJECTED if error in _REJECTIONS else Status.FAILED
        move(conn, payment, failed, data, failure_code=error, failure_message=cause)
        _announce_failure(conn, payment, failed, error)
    observability.count(names.PAYMENTS_DECLINED, **{names.DIMENSION_ERROR: error})
    return {"error": error, "cause": cause}


reject_payment = _reject
