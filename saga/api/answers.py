"""What the API answers for a payment: the one mapping from a payment's recorded state to an HTTP response.

Read from the payment, never from an execution's error, so POST and GET always agree with the money: a payment the
gateway may have captured is never answered as failed.
"""

from __future__ import annotations

from saga.api.errors import json_response
from saga.api.payment_view import operation_body, payment_body
from saga.idempotency import StoredResponse
from steps.errors import ServiceUnavailable
from store import lifecycle
from store.lifecycle import PaymentStatus as Status
from store.operations import Operation
from store.payments import Payment

__all__ = ["operation_answer", "payment_answer"]


def _stored(result: dict[str, object]) -> StoredResponse:
    headers = result["headers"]
    assert isinstance(headers, dict)
    return StoredResponse(int(str(result["statusCode"])), tuple((str(k), str(v)) for k, v in headers.items()),
                          str(result["body"]).encode("utf-8"))


def payment_answer(payment: Payment) -> StoredResponse | None:
    """The answer to POST /v1/payments for this payment, or None while no execution has brought it to an end."""
    body = payment_body(payment)
    # Succeeded; or, for a manual capture, authorized with the reservation held (and canceled, if the merchant
    # cancelled it before this answer was read): the checkout itself succeeded.
    if payment.status in (Status.SUCCEEDED, Status.CANCELED) \
            or lifecycle.awaiting_capture(payment.status, payment.capture_mode):
        return _stored(json_response(201, body))
    if payment.status in (Status.REVIEW, Status.NEEDS_ATTENTION):
        return _stored(json_response(202, body))
    if payment.status in lifecycle.FAILED:
        error = payment.failure_code or ServiceUnavailable.__name__
        message = payment.failure_message or error
        return _stored(json_response(402, {"error": {"type": error, "message": message}, "payment": body}))
    return None


def operation_answer(payment: Payment, operation: Operation) -> StoredResponse:
    """The answer to POST /v1/payments/{id}/capture|cancel|refunds once its execution ended: a refund shows itself
    (201 succeeded, 202 pending at the gateway, 402 failed), a capture or cancel the payment (200, 202 while the
    gateway has not confirmed, 402 refused)."""
    shown = {"refund": operation_body(operation)} if operation.kind == "refund" \
        else {"payment": payment_body(payment), "operation": operation_body(operation)}
    if operation.status == "failed":
        error = {"type": operation.failure_code or "OperationFailed",
                 "message": operation.failure_message or operation.failure_code or "the gateway refused it"}
        return _stored(json_response(402, {"error": error, **shown}))
    if operation.status == "pending":
        return _stored(json_response(202, shown))
    created = 201 if operation.kind == "refund" else 200
    return _stored(json_response(created, shown))
