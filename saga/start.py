"""Start one payment: idempotency gate -> payment row -> synchronous saga execution -> the HTTP answer.

Crash safety, line by line: the gate's IN_PROGRESS record holds the payment id before anything else is written, so a
holder that dies anywhere below leaves a record that a retry takes over after the in-progress expiry, with the same
payment id; every write below is idempotent for that id, and every saga step skips what already took effect.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from ulid import ULID

from core.db import engine as db_engine
from core.settings import Settings
from ledger import lifecycle
from ledger.merchants import Merchant
from ledger.payments import Payment, insert_payment
from saga import idempotency
from saga.api.errors import ApiError, json_response
from saga.api.payment_view import payment_body
from saga.api.request import PaymentRequest
from saga.execution import ExecutionRun, PaymentBusyError, run_execution
from saga.sfn import StepFunctions, execution_input, step_functions
from steps.errors import ExecutionSuperseded, ServiceUnavailable

SUPERSEDED = ExecutionSuperseded.__name__
RETRY_AFTER_S = 2


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: dict[str, str]
    body: str

    def proxy_result(self, *, replayed: bool = False) -> dict[str, Any]:
        headers = dict(self.headers)
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return {"statusCode": self.status, "headers": headers, "body": self.body, "isBase64Encoded": False}


def _run(settings: Settings, engine: Engine, sfn: StepFunctions, arn: str, *, payment_id: int,
         saga_input: dict[str, Any]) -> ExecutionRun:
    return run_execution(engine, sfn, arn, payment_id=payment_id, name=f"pay-{payment_id}-{ULID()}",
                         execution_input=saga_input, lease_ms=settings.execution_lease_ms,
                         wait_ms=settings.lease_wait_ms, history=not settings.state_machine_arn)


def unavailable(what: str) -> ApiError:
    return ApiError(503, "ServiceUnavailable", f"{what} is unavailable; retry with the same Idempotency-Key",
                    headers={"Retry-After": str(RETRY_AFTER_S)})


def _in_flight() -> ApiError:
    return ApiError(409, "RequestInFlight", "a request with this Idempotency-Key is still in flight",
                    "Idempotency-Key", headers={"Retry-After": str(RETRY_AFTER_S)})


def _answer(result: dict[str, Any]) -> HttpAnswer:
    return HttpAnswer(int(result["statusCode"]), dict(result["headers"]), str(result["body"]))


def answer_for(payment: Payment) -> HttpAnswer | None:
    """The HTTP answer a payment's recorded state gives, or None while no execution has brought it to an end.

    The answer is read from the payment, never from an execution's error, so POST and GET always agree with the
    money: a payment the gateway captured is never answered as failed."""
    body = payment_body(payment)
    if payment.status == "succeeded":
        return _answer(json_response(201, body))
    if payment.status in ("review", "needs_attention"):
        return _answer(json_response(202, body))
    if payment.status in lifecycle.FAILED:
        error = payment.failure_code or ServiceUnavailable.__name__
        message = payment.failure_message or error
        return _answer(json_response(402, {"error": {"type": error, "message": message}, "payment": body}))
    return None


def run_payment(
    *,
    settings: Settings, gate: idempotency.IdempotencyGate, ids: Any, merchant: Merchant, key: str,
    request: PaymentRequest, fingerprint: str,
) -> dict[str, Any]:
    """The proxy result for POST /v1/payments once the request is authenticated and valid."""
    try:
        decision = gate.begin(merchant.id, key, fingerprint, new_payment_id=ids.next_id)
    except (BotoCoreError, ClientError) as error:
        raise unavailable("the idempotency store") from error
    except idempotency.GateContentionError as error:
        raise _in_flight() from error  # other requests with this key kept changing its record: one is in flight
    if isinstance(decision, idempotency.Replay):
        stored = decision.response
        return HttpAnswer(stored.status_code, dict(stored.headers), stored.body.decode("utf-8")).proxy_result(
            replayed=True)
    if isinstance(decision, idempotency.InFlight):
        raise _in_flight()
    if isinstance(decision, idempotency.Mismatch):
        raise ApiError(422, "IdempotencyKeyReused",
                       "this Idempotency-Key was used with a different request body", "Idempotency-Key")

    payment_id, token = decision.payment_id, decision.token
    engine = db_engine(settings)
    sfn, arn = step_functions(settings)
    saga_input = execution_input(payment_id, merchant.id, request.capture_amount_minor)
    try:
        with engine.begin() as conn:
            insert_payment(conn, payment_id=payment_id, merchant_id=merchant.id, amount_minor=request.amount_minor,
                           currency=request.currency, capture_mode=request.capture_mode, gateway=settings.gateway,
                           customer_ref=request.customer_reference, order_ref=request.order_reference,
                           payment_method_token=request.payment_method_token,
                           metadata=request.metadata)
        run = _run(settings, engine, sfn, arn, payment_id=payment_id, saga_input=saga_input)
        answer = answer_for(run.payment)
        if answer is None and run.response is not None and run.response.get("error") == SUPERSEDED:
            # Another execution holds the payment now: wait for it to end, then answer from what it recorded (or,
            # if it left the payment unfinished, run the saga again under a lease of our own).
            answer = answer_for(_run(settings, engine, sfn, arn, payment_id=payment_id, saga_input=saga_input).payment)
    except SQLAlchemyError as error:
        gate.release(merchant.id, key, token)  # let the retry resume at once, same payment id
        raise unavailable("the database") from error
    except PaymentBusyError as error:
        gate.release(merchant.id, key, token)
        raise _in_flight() from error
    except (BotoCoreError, ClientError) as error:
        # The execution may be running: the key stays IN_PROGRESS and a retry after its expiry resumes it.
        raise unavailable("the workflow service") from error

    if answer is None:
        gate.release(merchant.id, key, token)
        raise unavailable("a backend of the payment saga")
    # If this fails the answer is still right: the record expires, and a retry resumes the finished saga, whose
    # steps all return their recorded results, so it answers the same outcome.
    with contextlib.suppress(BotoCoreError, ClientError, idempotency.NotHolderError):
        gate.complete(merchant.id, key, token, idempotency.StoredResponse(
            answer.status, tuple(answer.headers.items()), answer.body.encode("utf-8")))
    return answer.proxy_result()

