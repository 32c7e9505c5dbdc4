"""What the API answers for a payment: the one mapping from a payment's recorded state to an HTTP response.

Read from the payment, never from an execution's error, so POST and GET always agree with the money: a payment the
gateway may have captured is never answered as failed.
"""

from __future__ import annotations

from saga.api.errors import json_response
from saga.api.payment_view import payment_body
from saga.idempotency import StoredResponse
from steps.errors import ServiceUnavailable
from store import lifecycle
from store.lifecycle import PaymentStatus as Status
from store.payments import Payment

__all__ = ["payment_answer"]


def _stored(result: dict[str, object]) -> StoredResponse:
    headers = result["headers"]
    assert isinstance(headers, dict)
    return StoredResponse(int(str(result["statusCode"])), tuple((str(k), str(v)) for k, v in headers.items()),
                          str(result["body"]).encode("utf-8"))


def payment_answer(payment: Payment) -> StoredResponse | None:
    """The answer to POST /v1/payments for this payment, or None while no execution has brought it to an end."""
    body = payment_body(payment)
    if payment.status == Status.SUCCEEDED:
        return _stored(json_response(201, body))
    if payment.status in (Status.REVIEW, Status.NEEDS_ATTENTION):
        return _stored(json_response(202, body))
    if payment.status in lifecycle.FAILED:
        error = payment.failure_code or ServiceUnavailable.__name__
        message = payment.failure_message or error
        return _stored(json_response(402, {"error": {"type": error, "message": message}, "payment": body}))
    return None
