"""Step 5, CommitLedger: ONE PostgreSQL transaction that posts the reservation (the captured part; the rest is
released) and the fee, moves the payment's status under the optimistic lock, and writes the outbox row.
Compensation: ReverseLedger adds reversing entries (never edits)."""

from __future__ import annotations

from typing import Any

from ulid import ULID

from core.money import MINOR_UNIT_EXPONENT
from ledger.posting import post, reverse, void
from steps import deps
from steps.errors import CommitRejected
from steps.fraud import decision_for
from steps.payment_state import claim, move
from steps.runtime import StepInput, StepResult, step
from store import lifecycle
from store.lifecycle import PaymentStatus as Status
from store.outbox import insert_event
from store.payments import Payment
from store.results import Reason

FEE_BASIS_POINTS = 140  # 1.40 % ...
FEE_FIXED_MINOR_2DP = 25  # ... + 0.25 in two-decimal currencies; integer arithmetic, rounded down


def fee_minor(captured_minor: int, currency: str) -> int:
    fixed = FEE_FIXED_MINOR_2DP if MINOR_UNIT_EXPONENT.get(currency, 2) >= 2 else 0
    return min(captured_minor, captured_minor * FEE_BASIS_POINTS // 10_000 + fixed)


def event_payload(payment: Payment, event_type: str, fee: int) -> dict[str, Any]:
    return {"type": event_type, "payment_id": str(payment.id), "merchant_id": payment.merchant_id,
            "amount_minor": payment.amount_minor, "captured_amount_minor": payment.captured_amount_minor,
            "fee_minor": fee, "currency": payment.currency, "order_reference": payment.order_ref}


@step("CommitLedger")
def _commit(data: StepInput) -> StepResult:
    with deps.engine().begin() as conn:
        payment = claim(conn, data)
        if payment.status == Status.VOIDED and payment.fraud_score is not None \
                and decision_for(payment.fraud_score) == "review":
            # Held for review: nothing was captured, so the reservation is released, in the same transaction.
            void(conn, payment_id=payment.id)
            move(conn, payment, Status.REVIEW, data)
            insert_event(conn, event_id=str(ULID()), payment_id=payment.id, event_type="payment.review",
                         payload=event_payload(payment, "payment.review", 0))
            return {"status": "review"}
        if payment.captured_amount_minor is None:
            raise ValueError(f"payment {payment.id} reached CommitLedger with nothing captured ({payment.status})")
        fee = fee_minor(payment.captured_amount_minor, payment.currency)
        result = post(conn, payment_id=payment.id, amount_minor=payment.captured_amount_minor, fee_minor=fee)
        if not result.in_effect:
            raise CommitRejected(f"the ledger refused to post payment {payment.id}: {result.reason}")
        if payment.status not in (Status.COMMITTED, Status.SUCCEEDED):
            move(conn, payment, Status.COMMITTED, data)
        insert_event(conn, event_id=str(ULID()), payment_id=payment.id, event_type="payment.succeeded",
                     payload=event_payload(payment, "payment.succeeded", result.fee_minor))
    return {"status": "committed", "transaction_id": result.transaction_id, "fee_minor": result.fee_minor,
            "replayed": result.reason is Reason.ALREADY_APPLIED}


handler = _commit


@step("ReverseLedger")
def _reverse(data: StepInput) -> StepResult:
    with deps.engine().begin() as conn:
        payment = claim(conn, data)
        if payment.status in lifecycle.FINAL:  # a finished payment's books are not this compensation's to undo
            return {"reversed": False, "status": payment.status}
        result = reverse(conn, payment_id=data.payment_id)
    return {"reversed": result.in_effect, "replayed": not result.applied}


reverse_ledger = _reverse
