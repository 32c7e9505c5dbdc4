"""The start handler: a Lambda handler behind API Gateway (locally behind local.http.server), and the one place that
maps the start path's outcomes to HTTP.

POST /v1/payments runs the payment saga synchronously (saga.start); GET /v1/payments/{id} shows one payment to its
merchant; POST /v1/payments/{id}/capture, .../cancel and .../refunds run an operation after checkout (saga.operate);
GET /v1/payments/{id}/refunds and /v1/refunds/{id} show refunds.

The services come from the composition root (saga.bootstrap): on AWS one per process, made at the first
request; off AWS the local tooling makes them and calls `make_handler`.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from sqlalchemy.exc import SQLAlchemyError

from core import observability
from core import telemetry_names as names
from core.aws import LambdaHandler
from core.settings import SettingsError, settings
from saga.api.answers import operation_answer, payment_answer
from saga.api.errors import ApiError, error_response, json_response
from saga.api.payment_view import operation_body, payment_body
from saga.api.request import (
    CancelRequest,
    CaptureRequest,
    OperationBody,
    RefundRequest,
    header,
    idempotency_key,
    parse_body,
    parse_operation_body,
)
from saga.api.webhook_endpoints import add_webhook_routes
from saga.bootstrap import Services, bootstrap
from saga.merchant_keys import authenticate
from saga.operate import OperationRefused, OperationRequest, PaymentNotFound, operate
from saga.start import Answered, BackendUnavailable, KeyInFlight, KeyReused, StillRunning, start_payment
from saga.webhooks import receive
from steps.gateway.notices import WebhookRejected, WebhookSource
from steps.gateway.port import GatewayNotConfigured
from steps.registry import Workflow
from store.disputes import disputes_of_payment
from store.merchants import Merchant
from store.operations import get_operation, operations_of_payment
from store.payments import get_payment

__all__ = ["build_resolver", "handler", "make_handler", "shutdown"]

logger = observability.logger(names.SERVICE_START)
webhook_logger = observability.logger(names.SERVICE_WEBHOOKS)
RETRY_AFTER_S = 2
_PAYMENT_ID = re.compile(r"^[0-9]{1,19}$")
WEBHOOK_GATEWAYS = ("stripe", "adyen")  # the sandbox sends none: its outcomes are read by lookup


def unavailable(what: str) -> ApiError:
    return ApiError(503, "ServiceUnavailable", f"{what} is unavailable; retry with the same Idempotency-Key",
                    headers={"Retry-After": str(RETRY_AFTER_S)})


def _in_flight() -> ApiError:
    return ApiError(409, "RequestInFlight", "a request with this Idempotency-Key is still in flight",
                    "Idempotency-Key", headers={"Retry-After": str(RETRY_AFTER_S)})


def _key_reused() -> ApiError:
    return ApiError(422, "IdempotencyKeyReused", "this Idempotency-Key was used with a different request body",
                    "Idempotency-Key")


def _answered(answer: Answered) -> Response[str]:
    headers = dict(answer.response.headers)
    if answer.replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(status_code=answer.response.status_code, body=answer.response.body.decode("utf-8"),
                    headers=headers, content_type=None)


def _still_running(answer: StillRunning) -> Response[str]:
    """202: the saga outlived the answer budget; the client polls the payment (a retry with the key answers 409 while
    it runs, then the final answer)."""
    payment_id = answer.payment.id
    return _proxy(json_response(202, payment_body(answer.payment),
                                {"Location": f"/v1/payments/{payment_id}", "Retry-After": str(RETRY_AFTER_S)}))


def _respond(run: Callable[[], Answered | StillRunning]) -> Response[str]:
    """The answer of a run behind the idempotency gate (a payment's start, an operation), or the refusal it met."""
    try:
        answer = run()
    except KeyInFlight as refused:
        raise _in_flight() from refused
    except KeyReused as refused:
        raise _key_reused() from refused
    except BackendUnavailable as refused:
        raise unavailable(refused.what) from refused
    if isinstance(answer, StillRunning):
        return _still_running(answer)
    return _answered(answer)


def _proxy(result: dict[str, Any]) -> Response[str]:
    return Response(status_code=int(result["statusCode"]), body=str(result["body"]),
                    headers=dict(result.get("headers") or {}), content_type=None)


def build_resolver(services: Callable[[], Services]) -> APIGatewayRestResolver:
    """The API's routes over the services `services()` gives (called per request: made once, where it is cached)."""
    app = APIGatewayRestResolver()

    def merchant_of(headers: dict[str, str] | None) -> Merchant:
        value = header(headers, "Authorization") or ""
        scheme, _, api_key = value.partition(" ")
        if scheme.lower() != "bearer" or not api_key.strip():
            raise ApiError(401, "Unauthorized", "send the merchant API key as 'Authorization: Bearer <key>'",
                           headers={"WWW-Authenticate": "Bearer"})
        try:
            with services().engine.connect() as conn:
                merchant = authenticate(conn, api_key.strip())
        except SQLAlchemyError as error:
            raise unavailable("the database") from error
        if merchant is None:
            raise ApiError(401, "Unauthorized", "the API key is not valid", headers={"WWW-Authenticate": "Bearer"})
        observability.correlate(merchant_id=merchant.id)
        return merchant

    @app.post("/v1/payments")
    def create_payment() -> Response[str]:
        event = app.current_event
        merchant = merchant_of(event.headers)
        key = idempotency_key(event.headers)
        request, fingerprint = parse_body(event.body)
        return _respond(lambda: start_payment(services(), merchant=merchant, key=key, request=request,
                                              fingerprint=fingerprint, render=payment_answer))

    @app.get("/v1/payments/<payment_id>")
    def show_payment(payment_id: str) -> Response[str]:
        merchant = merchant_of(app.current_event.headers)
        number = _id(payment_id, "payment_id")
        observability.correlate(payment_id=payment_id)
        try:
            with services().engine.connect() as conn:
                payment = get_payment(conn, payment_id=number)
                disputes = disputes_of_payment(conn, payment_id=number) if payment is not None else []
                operations = operations_of_payment(conn, payment_id=number) if payment is not None else []
        except SQLAlchemyError as error:
            raise unavailable("the database") from error
        if payment is None or payment.merchant_id != merchant.id:  # another merchant's payment does not exist for you
            raise ApiError(404, "PaymentNotFound", f"no payment {payment_id}", "payment_id")
        return _proxy(json_response(200, payment_body(payment, disputes, operations)))

    def run_operation(payment_id: str, kind: Workflow) -> Response[str]:
        event = app.current_event
        merchant = merchant_of(event.headers)
        number = _id(payment_id, "payment_id")
        observability.correlate(payment_id=payment_id)
        key = idempotency_key(event.headers)
        scope = {"operation": kind.value, "payment_id": str(number)}
        body = parse_operation_body(event.body, _OPERATION_BODIES[kind], scope=scope)
        parsed, fingerprint = body
        request = OperationRequest(kind=kind, amount_minor=getattr(parsed, "amount_minor", None),
                                   currency=getattr(parsed, "currency", None), reason=getattr(parsed, "reason", None))
        try:
            return _respond(lambda: operate(services(), merchant=merchant, payment_id=number, key=key,
                                            fingerprint=fingerprint, request=request, render=operation_answer))
        except PaymentNotFound as refused:
            raise ApiError(404, "PaymentNotFound", f"no payment {payment_id}", "payment_id") from refused
        except OperationRefused as refused:
            raise ApiError(refused.status, refused.error, refused.message, refused.field) from refused

    @app.post("/v1/payments/<payment_id>/capture")
    def capture_payment(payment_id: str) -> Response[str]:
        return run_operation(payment_id, Workflow.CAPTURE)

    @app.post("/v1/payments/<payment_id>/cancel")
    def cancel_payment(payment_id: str) -> Response[str]:
        return run_operation(payment_id, Workflow.CANCEL)

    @app.post("/v1/payments/<payment_id>/refunds")
    def refund_payment(payment_id: str) -> Response[str]:
        return run_operation(payment_id, Workflow.REFUND)

    @app.get("/v1/payments/<payment_id>/refunds")
    def list_refunds(payment_id: str) -> Response[str]:
        merchant = merchant_of(app.current_event.headers)
        number = _id(payment_id, "payment_id")
        try:
            with services().engine.connect() as conn:
                payment = get_payment(conn, payment_id=number)
                refunds = operations_of_payment(conn, payment_id=number, kind="refund") if payment else []
        except SQLAlchemyError as error:
            raise unavailable("the database") from error
        if payment is None or payment.merchant_id != merchant.id:
            raise ApiError(404, "PaymentNotFound", f"no payment {payment_id}", "payment_id")
        return _proxy(json_response(200, {"refunds": [operation_body(r) for r in refunds]}))

    @app.get("/v1/refunds/<refund_id>")
    def show_refund(refund_id: str) -> Response[str]:
        merchant = merchant_of(app.current_event.headers)
        number = _id(refund_id, "refund_id")
        try:
            with services().engine.connect() as conn:
                refund = get_operation(conn, operation_id=number)
        except SQLAlchemyError as error:
            raise unavailable("the database") from error
        if refund is None or refund.kind != "refund" or refund.merchant_id != merchant.id:
            raise ApiError(404, "RefundNotFound", f"no refund {refund_id}", "refund_id")
        return _proxy(json_response(200, {"refund": operation_body(refund)}))

    @app.post("/v1/webhooks/<gateway>")
    def gateway_webhook(gateway: str) -> Response[str]:
        """A gateway's events: verified, stored once, applied (saga.webhooks). No merchant key: the signature is
        the authentication."""
        try:
            source = services().gateways(gateway) if gateway in WEBHOOK_GATEWAYS else None
        except GatewayNotConfigured as error:
            webhook_logger.error("webhook for an unconfigured gateway", extra={"gateway": gateway, "error": str(error)})
            raise unavailable(f"the {gateway} gateway") from error
        if not isinstance(source, WebhookSource):
            raise ApiError(404, "NotFound", f"no webhooks are taken from {gateway!r}", "gateway")
        event = app.current_event
        body = (event.decoded_body or "").encode("utf-8")
        try:
            received = receive(services().engine, source, body, dict(event.headers or {}))
        except WebhookRejected as refused:
            webhook_logger.warning("webhook refused", extra={"gateway": gateway, "why": str(refused)})
            raise ApiError(400, "WebhookRejected", str(refused), "signature") from refused
        except SQLAlchemyError as error:
            raise unavailable("the database") from error  # the gateway redelivers: nothing was stored
        webhook_logger.info("webhook received", extra={"gateway": gateway, "stored": received.stored,
                                                       "duplicates": received.duplicates,
                                                       "applied": received.applied})
        if gateway == "adyen":  # Adyen wants exactly this body, or it redelivers
            return Response(status_code=200, body="[accepted]", content_type="text/plain")
        return _proxy(json_response(200, {"received": True, "stored": received.stored,
                                          "duplicates": received.duplicates}))

    add_webhook_routes(app, services, merchant_of, unavailable)  # the merchant's webhook endpoints, resends

    @app.exception_handler(ApiError)
    def _api_error(error: ApiError) -> Response[str]:
        return _proxy(error_response(error))

    @app.exception_handler(SettingsError)
    def _settings_error(error: SettingsError) -> Response[str]:
        logger.error("configuration error", extra={"error": str(error)})
        return _proxy(error_response(unavailable("the service configuration")))

    @app.not_found
    def _not_found(_: Exception) -> Response[str]:
        event = app.current_event
        return _proxy(error_response(ApiError(404, "NotFound", f"no route for {event.http_method} {event.path}")))

    @app.exception_handler(Exception)
    def _unexpected(error: Exception) -> Response[str]:
        # The stack trace goes to the log, never to the client.
        logger.exception("unexpected error")
        return _proxy(error_response(ApiError(500, "InternalError", "an unexpected error occurred; it was logged")))

    return app


def _id(value: str, field: str) -> int:
    """A payment's or refund's id from the path: a decimal number below 2**63, else 400 naming the field."""
    if not _PAYMENT_ID.match(value) or int(value) >= 2**63:
        raise ApiError(400, f"{field.removesuffix('_id').title()}IdMalformed",
                       f"the {field.removesuffix('_id')} id is a decimal number of at most 19 digits", field)
    return int(value)


_OPERATION_BODIES: dict[Workflow, type[OperationBody]] = {
    Workflow.CAPTURE: CaptureRequest, Workflow.CANCEL: CancelRequest, Workflow.REFUND: RefundRequest}


def _route(event: dict[str, Any]) -> tuple[str, str]:
    """(method, route) of an API Gateway proxy event; an id in the path reads {id}."""
    method, path = str(event.get("httpMethod") or ""), str(event.get("path") or "")
    for prefix in ("/v1/payments/", "/v1/refunds/"):
        if path.startswith(prefix):
            rest = path.removeprefix(prefix).partition("/")[2]
            return method, f"{prefix}{{id}}" + (f"/{rest}" if rest else "")
    return method, path


def _payment_shown(result: dict[str, Any]) -> str | None:
    """The id of the payment an answer shows: POST's 201/202/402 and GET's 200 name it in their bodies."""
    try:
        body = json.loads(str(result.get("body") or ""))
    except ValueError:
        return None
    shown = body.get("payment", body) if isinstance(body, dict) else None
    payment_id = shown.get("id") if isinstance(shown, dict) else None
    return payment_id if isinstance(payment_id, str) and payment_id.isdigit() else None


def _answer(app: APIGatewayRestResolver, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One request, observed (core.observability): the Lambda context and the payment as correlation id in the log
    lines (the payment once known: its answer names it), StartLatency for POST /v1/payments, an access log line."""
    method, route = _route(event)
    webhook = route.startswith("/v1/webhooks/")
    with observability.invocation(f"{method} {route}", context,
                                  service=names.SERVICE_WEBHOOKS if webhook else names.SERVICE_START) as call:
        result: dict[str, Any] = app.resolve(event, context)
        if webhook:  # logged by the route itself ("webhook received" / "webhook refused")
            return result
        status = int(result.get("statusCode") or 0)
        payment_id = _payment_shown(result) if route.startswith("/v1/payments") else None
        if payment_id is not None:
            call.correlate(payment_id=payment_id)
        if (method, route) == ("POST", "/v1/payments"):
            call.milliseconds(names.START_LATENCY_MS, call.elapsed_ms(),
                              **{names.DIMENSION_OUTCOME: f"{status // 100}xx"})
        logger.info("answered", extra={"method": method, "route": route, "status": status,
                                       "latency_ms": round(call.elapsed_ms(), 1)})
        return result


def make_handler(services: Services) -> LambdaHandler:
    """A Lambda-shaped handler over these services. The resolver keeps the request being handled on itself, so a
    server that calls from several threads gets one resolver per thread."""
    per_thread = threading.local()

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        app: APIGatewayRestResolver | None = getattr(per_thread, "app", None)
        if app is None:
            app = per_thread.app = build_resolver(lambda: services)
        return _answer(app, event, context)

    return handle


class ProcessServices:
    """On AWS: the services of this process (a Lambda container), made at its first request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._services: Services | None = None

    def __call__(self) -> Services:
        with self._lock:
            if self._services is None:
                self._services = bootstrap(settings())
            return self._services

    def close(self) -> None:
        with self._lock:
            if self._services is not None:
                self._services.close()
                self._services = None


_process = ProcessServices()
_app = build_resolver(_process)


def shutdown() -> None:
    """Release what the process holds (its Snowflake worker slot), if it ever took it."""
    _process.close()


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _answer(_app, event, context)
