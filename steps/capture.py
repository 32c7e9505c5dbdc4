"""Step 4, CaptureOrVoid: the pivot. Captures (in full, or the amount the merchant asked for) or, for a payment
held for review, voids. Keeps both capture models: final at once (Stripe) or acknowledged now and confirmed later
(Adyen: `capture_submitted`, then `captured` or `capture_failed`). Compensation: RefundCapture.

Past this step the saga recovers forward: an infrastructure failure here is retried and then parked, never refunded.
"""

from __future__ import annotations

from ledger.posting import reservation_held
from steps import deps
from steps.authorize import cancel_at_gateway
from steps.errors import CaptureFailed, CapturePending, TransientError
from steps.fraud import decision_for
from steps.gateway.port import Gateway, GatewayOutcomeUnknown, GatewayRejected, GatewayStatus, GatewayUnreachable
from steps.payment_state import check_lease, claim, load, move
from steps.runtime import StepInput, StepResult, step
from store import lifecycle
from store.lifecycle import PaymentStatus as Status
from store.payments import Payment

# At the gateway these mean there is no authorization left to capture.
_AUTHORIZATION_GONE = frozenset({GatewayStatus.VOIDED, GatewayStatus.DECLINED})


def _record(data: StepInput, to_status: str, **fields: object) -> None:
    with deps.engine().begin() as conn:
        current = claim(conn, data)
        if current.status != to_status:
            move(conn, current, to_status, data, **fields)


def _settle(data: StepInput, payment: Payment, status: GatewayStatus, amount_minor: int) -> StepResult:
    """Record what the gateway says of the capture; raise where the saga must wait or turn back."""
    if status is GatewayStatus.CAPTURED:
        _record(data, Status.CAPTURED, captured_amount_minor=amount_minor)
        return {"action": "captured", "captured_amount_minor": amount_minor}
    if status is GatewayStatus.CAPTURE_SUBMITTED:
        _record(data, Status.CAPTURE_SUBMITTED)
        raise CapturePending(f"capture of {payment.id} acknowledged by the gateway; awaiting its confirmation")
    if status is GatewayStatus.CAPTURE_FAILED:
        _record(data, Status.CAPTURE_FAILED)
        raise CaptureFailed(f"the gateway refused the capture of payment {payment.id}")
    if status in _AUTHORIZATION_GONE:
        # A compensation voided it before its process died: nothing can be captured, so turn back (release the
        # reservation, fail the payment) instead of parking forever.
        _record(data, Status.CAPTURE_FAILED)
        raise CaptureFailed(f"the authorization of payment {payment.id} is {status.value}")
    if status is GatewayStatus.AUTHORIZED:
        raise TransientError(f"capture of {payment.id} not taken by the gateway yet; retrying with the same key")
    raise TransientError(f"capture of {payment.id}: unexpected gateway status {status}")


def capture_at_gateway(data: StepInput, gateway: Gateway, payment: Payment, amount_minor: int) -> StepResult:
    """Capture amount_minor of the payment under the one capture key, resolving an unknown outcome by asking; record
    what the gateway says (captured, submitted, failed) and raise where the caller must wait or turn back."""
    key = str(payment.id)
    if payment.status == Status.CAPTURE_SUBMITTED:  # acknowledged earlier: ask how it ended
        snapshot = gateway.lookup(payment_id=key, gateway_reference=payment.gateway_reference)
        if snapshot is None:
            raise TransientError(f"the gateway does not know payment {key}")
        if snapshot.status is GatewayStatus.AUTHORIZED:
            # A gateway that learns outcomes by webhook (Adyen) has not heard how the acknowledged capture ended.
            raise CapturePending(f"capture of {key} acknowledged; its outcome has not arrived yet")
        return _settle(data, payment, snapshot.status, snapshot.captured_minor or amount_minor)
    try:
        assert payment.gateway_reference is not None, "AuthorizeGateway records the reference before the pivot"
        answer = gateway.capture(payment_id=key, gateway_reference=payment.gateway_reference,
                                 amount_minor=amount_minor, currency=payment.currency)
    except GatewayRejected:
        snapshot = gateway.lookup(payment_id=key, gateway_reference=payment.gateway_reference)
        if snapshot is not None and snapshot.status in _AUTHORIZATION_GONE:
            return _settle(data, payment, snapshot.status, amount_minor)  # raises CaptureFailed
        raise
    except GatewayOutcomeUnknown:
        snapshot = gateway.lookup(payment_id=key, gateway_reference=payment.gateway_reference)
        if snapshot is None:
            raise TransientError(f"the gateway does not know payment {key}") from None
        return _settle(data, payment, snapshot.status, snapshot.captured_minor or amount_minor)
    except GatewayUnreachable as error:
        raise TransientError(f"capture of {key}: gateway unavailable") from error
    return _settle(data, payment, answer.status, answer.amount_minor)


def _hold_again(data: StepInput, gateway: Gateway, payment: Payment) -> None:
    """A manual-capture payment parked in this step goes back to `authorized` (where its merchant can capture or
    cancel it, and the expiry policy sees it) once the gateway confirms the authorization is still open; one whose
    authorization is gone turns back like a refused capture (the saga's compensations release the reservation)."""
    with deps.engine().connect() as conn:
        held = reservation_held(conn, payment_id=payment.id)
    if not held:  # a compensation released it before the payment was parked: the saga turns back
        raise CaptureFailed(f"the reservation of manual-capture payment {payment.id} is no longer held")
    snapshot = gateway.lookup(payment_id=str(payment.id), gateway_reference=payment.gateway_reference)
    if snapshot is not None and snapshot.status is GatewayStatus.AUTHORIZED:
        _record(data, Status.AUTHORIZED)
        return
    if (snapshot is None and gateway.lookup_is_complete) or (snapshot is not None
                                                              and snapshot.status in _AUTHORIZATION_GONE):
        raise CaptureFailed(f"the authorization of manual-capture payment {payment.id} is gone at the gateway")
    found = "unknown" if snapshot is None else snapshot.status.value
    raise TransientError(f"manual-capture payment {payment.id} is {found} at the gateway; asking again")


@step("CaptureOrVoid")
def _capture_or_void(data: StepInput) -> StepResult:
    with deps.engine().connect() as conn:
        payment = load(conn, data.payment_id)
    if payment.captured_amount_minor is not None:  # captured before: the recorded result
        return {"action": "captured", "captured_amount_minor": payment.captured_amount_minor, "replayed": True}
    check_lease(payment, data)  # the gateway is asked only by the execution that holds the payment
    if payment.fraud_score is not None and decision_for(payment.fraud_score) == "review":
        outcome = cancel_at_gateway(deps.gateway(payment), str(payment.id), payment.gateway_reference)
        if payment.status in (Status.AUTHORIZED, Status.NEEDS_ATTENTION):
            _record(data, Status.VOIDED)
        return {"action": "voided", "review": True, "outcome": outcome}
    if payment.status in lifecycle.FAILED:
        # Failed before (a replay of a failed payment): capture nothing; the Catch voids what may be left.
        raise CaptureFailed(f"payment {payment.id} is {payment.status}: nothing is captured")
    if payment.capture_mode == "manual":
        # The merchant captures later (POST /v1/payments/{id}/capture, capture.asl.json): the saga ends here with the
        # payment authorized and its reservation held.
        if payment.status == Status.NEEDS_ATTENTION:  # parked here before: held again, if the gateway still holds it
            _hold_again(data, deps.gateway(payment), payment)
        return {"action": "held"}
    amount_minor = data.capture_amount_minor or payment.amount_minor
    if amount_minor > payment.amount_minor:
        raise ValueError(f"capture of {amount_minor} exceeds the authorized {payment.amount_minor}")
    return capture_at_gateway(data, deps.gateway(payment), payment, amount_minor)


handler = _capture_or_void


@step("RefundCapture")
def _refund(data: StepInput) -> StepResult:
    with deps.engine().connect() as conn:
        payment = load(conn, data.payment_id)
    check_lease(payment, data)
    if payment.captured_amount_minor is None:
        return {"outcome": "nothing_captured"}
    if payment.status == Status.REFUNDED:
        return {"outcome": "refunded", "refunded_minor": payment.captured_amount_minor, "replayed": True}
    if payment.status in lifecycle.FINAL:  # succeeded: another execution finished it; never refunded from here
        return {"outcome": f"not_refundable_{payment.status}"}
    gateway, key = deps.gateway(payment), str(payment.id)
    try:
        assert payment.gateway_reference is not None, "a captured payment was authorized"
        gateway.refund(payment_id=key, gateway_reference=payment.gateway_reference,
                       amount_minor=payment.captured_amount_minor, currency=payment.currency)
    except GatewayOutcomeUnknown:
        snapshot = gateway.lookup(payment_id=key, gateway_reference=payment.gateway_reference)
        if snapshot is None or snapshot.refunded_minor < payment.captured_amount_minor:
            raise TransientError(f"refund of {key}: outcome unknown; retrying with the same key") from None
    except GatewayUnreachable as error:
        raise TransientError(f"refund of {key}: gateway unavailable") from error
    _record(data, Status.REFUNDED)
    return {"outcome": "refunded", "refunded_minor": payment.captured_amount_minor}


refund_capture = _refund
