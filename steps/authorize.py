"""Step 3, AuthorizeGateway: a manual-capture authorization under the Redis fence, the payment id as the gateway's
idempotency key. Compensation: VoidAuthorization.

Three nets against a double authorization (DESIGN 6): the fence (one attempt at a time per payment), the gateway's
idempotency key (a repeated request gets the first answer), the optimistic lock on payments.version.
"""

from __future__ import annotations

from steps import deps
from steps.errors import (
    CapturedAtGateway,
    GatewayUnavailable,
    InsufficientFunds,
    PaymentDeclined,
    TransientError,
)
from steps.fence import FenceHeld, FenceUnavailable, authorize_fence
from steps.gateway.port import (
    DeclineReason,
    Gateway,
    GatewayOutcomeUnknown,
    GatewayRejected,
    GatewayStatus,
    GatewayUnreachable,
    PaymentSnapshot,
)
from steps.payment_state import check_lease, claim, load, move, refuse_if_failed
from steps.runtime import StepInput, StepResult, logger, step
from store import lifecycle
from store.lifecycle import PaymentStatus as Status

# At the gateway these mean an authorization exists (or existed and moved on).
_AUTHORIZED_AT_GATEWAY = frozenset({GatewayStatus.AUTHORIZED, GatewayStatus.CAPTURED, GatewayStatus.CAPTURE_SUBMITTED,
                                    GatewayStatus.CAPTURE_FAILED, GatewayStatus.REFUNDED})


def _decline(reason: DeclineReason | None, detail: str | None) -> Exception:
    if reason is DeclineReason.INSUFFICIENT_FUNDS:
        return InsufficientFunds("the card has insufficient funds")
    return PaymentDeclined(f"the card was declined ({detail or (reason.value if reason else 'card_declined')})")


def _resolve_unknown(gateway: Gateway, payment_id: str) -> PaymentSnapshot:
    """The request left and no answer came: ask the gateway (same key) before deciding anything."""
    snapshot = gateway.lookup(payment_id=payment_id)
    if snapshot is None:
        # The gateway never took it: resending with the same key is safe; the state machine retries.
        raise TransientError(f"authorization of {payment_id} did not reach the gateway; retrying with the same key")
    return snapshot


@step("AuthorizeGateway")
def _authorize(data: StepInput) -> StepResult:
    with deps.engine().connect() as conn:
        payment = load(conn, data.payment_id)
    if payment.gateway_reference is not None:  # authorized before: the recorded result
        return {"gateway_reference": payment.gateway_reference, "replayed": True}
    refuse_if_failed(payment)
    check_lease(payment, data)
    payment_key = str(payment.id)
    gateway = deps.gateway(payment)
    try:
        with authorize_fence(deps.fence_redis(), payment_key):
            try:
                answer = gateway.authorize(payment_id=payment_key, amount_minor=payment.amount_minor,
                                           currency=payment.currency, card_token=payment.payment_method_token or "")
                status, reference = answer.status, answer.gateway_reference
                reason, detail = answer.decline_reason, answer.decline_detail
            except GatewayOutcomeUnknown:
                snapshot = _resolve_unknown(gateway, payment_key)
                status, reference = snapshot.status, snapshot.gateway_reference
                reason, detail = snapshot.decline_reason, None
            except GatewayUnreachable as error:
                raise GatewayUnavailable(f"the gateway is unavailable: {error}") from error
            except GatewayRejected as error:
                # The gateway refused the request itself (e.g. an unknown card token): a decline for the customer;
                # the gateway's raw text stays in our logs, not in the merchant's answer.
                logger.warning("gateway rejected authorization", extra={"payment_id": payment_key,
                                                                        "code": error.code})
                raise PaymentDeclined(f"the gateway refused the payment method ({error.code})") from error
            if status is GatewayStatus.DECLINED:
                raise _decline(reason, detail)
            if status not in _AUTHORIZED_AT_GATEWAY:
                raise GatewayRejected(f"unexpected authorization status {status}", status_code=0, code=str(status))
            with deps.engine().begin() as conn:  # recorded while we still hold the fence
                current = claim(conn, data)
                # Failed meanwhile (a replay of a failed payment): the Catch voids what we just authorized.
                refuse_if_failed(current)
                if current.gateway_reference is None:
                    to_status = Status.AUTHORIZED if current.status == Status.RESERVED else current.status
                    move(conn, current, to_status, data, gateway_reference=reference)
    except FenceUnavailable as error:
        raise TransientError(f"no fence, no gateway call: {error}") from error
    return {"gateway_reference": reference, "replayed": False}


handler = _authorize


def cancel_at_gateway(gateway: Gateway, payment_id: str, gateway_reference: str | None = None) -> str:
    """Cancel the authorization if the gateway holds one; what happened, in a word. Asks the gateway first, since
    an authorization may exist that we never recorded (an unknown outcome, a crash after the gateway answered)."""
    snapshot = gateway.lookup(payment_id=payment_id, gateway_reference=gateway_reference)
    if snapshot is None:
        if gateway.lookup_is_complete:
            return "nothing_to_void"
        # A gateway that tells outcomes by webhook (Adyen) may hold an authorization whose notice is still on its
        # way: cancel by our reference, which it answers whether or not it took one.
        return _cancel(gateway, payment_id, gateway_reference or "")
    if snapshot.status in (GatewayStatus.DECLINED, GatewayStatus.VOIDED):
        return "nothing_to_void"
    if snapshot.status in (GatewayStatus.CAPTURED, GatewayStatus.CAPTURE_SUBMITTED):
        # Money moved at the gateway that we never recorded (a capture whose process died). Compensating backward
        # now would fail a charged payment; park it instead, and a replay records the capture and commits it.
        raise CapturedAtGateway(f"payment {payment_id} is {snapshot.status.value} at the gateway; parking it")
    if snapshot.status is not GatewayStatus.AUTHORIZED and snapshot.status is not GatewayStatus.CAPTURE_FAILED:
        return f"not_voidable_{snapshot.status.value}"  # refunded: RefundCapture already gave the money back
    return _cancel(gateway, payment_id, snapshot.gateway_reference)


def _cancel(gateway: Gateway, payment_id: str, gateway_reference: str) -> str:
    try:
        gateway.cancel(payment_id=payment_id, gateway_reference=gateway_reference)
    except GatewayRejected:
        return "nothing_to_void"  # the gateway says there is no open authorization left
    except GatewayOutcomeUnknown as error:
        raise TransientError(f"void of {payment_id}: outcome unknown; retrying with the same key") from error
    except GatewayUnreachable as error:
        raise TransientError(f"void of {payment_id}: gateway unavailable") from error
    return "voided"


@step("VoidAuthorization")
def _void(data: StepInput) -> StepResult:
    with deps.engine().connect() as conn:
        recorded = load(conn, data.payment_id)
    check_lease(recorded, data)  # a superseded execution voids nothing
    if recorded.status in lifecycle.CAPTURE_STANDS:  # past the pivot: nothing of it is ours to void
        return {"outcome": f"not_voidable_{recorded.status}"}
    payment_key = str(data.payment_id)
    gateway = deps.gateway(recorded)
    try:
        # Under the authorization's fence: an authorization still in flight (another execution's, which a newer one
        # superseded) lands before we ask, instead of after we decided there was nothing to void.
        with authorize_fence(deps.fence_redis(), payment_key):
            outcome = cancel_at_gateway(gateway, payment_key, recorded.gateway_reference)
    except FenceHeld as error:
        raise TransientError(f"an authorization of {payment_key} is in flight; voiding after it: {error}") from error
    except FenceUnavailable:
        # Redis is down: an authorization is in flight only if another execution took the fence before it went
        # down; parking every payment of an outage for that rare case would be worse. Void from what the gateway
        # says now.
        outcome = cancel_at_gateway(gateway, payment_key, recorded.gateway_reference)
    with deps.engine().begin() as conn:
        payment = claim(conn, data)
        # Recorded from the gateway's answer, not from whether this run voided: a run that voided and died before
        # recording it leaves the next run "nothing_to_void", and the status must still say so.
        no_open_authorization = outcome == "voided" or (outcome == "nothing_to_void"
                                                         and payment.gateway_reference is not None)
        if no_open_authorization and payment.status in (Status.RESERVED, Status.AUTHORIZED, Status.CAPTURE_FAILED,
                                                        Status.NEEDS_ATTENTION):
            move(conn, payment, Status.VOIDED, data)
    return {"outcome": outcome}


void_authorization = _void
