"""The start handler: a Lambda handler behind API Gateway (locally behind saga.http.server).

POST /v1/payments runs the payment saga synchronously; GET /v1/payments/{id} shows one payment to its merchant.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from sqlalchemy.exc import SQLAlchemyError

from core.aws import client
from core.db import engine as db_engine
from core.settings import SettingsError, settings
from ledger.merchants import Merchant
from ledger.payments import get_payment
from saga import idempotency
from saga.api.errors import ApiError, error_response, json_response
from saga.api.payment_view import payment_body
from saga.api.request import header, idempotency_key, parse_body
from saga.merchant_keys import authenticate
from saga.snowflake import SnowflakeGenerator, create_generator
from saga.start import run_payment, unavailable

logger = Logger(service="paysaga-start")
app = APIGatewayRestResolver()
_PAYMENT_ID = re.compile(r"^[0-9]{1,19}$")


@functools.cache
def _gate() -> idempotency.IdempotencyGate:
    current = settings()
    return idempotency.IdempotencyGate(client("dynamodb", current), current.idempotency_table,
                                       in_progress_ttl_ms=current.idempotency_in_progress_ttl_ms)


@functools.cache
def _ids() -> SnowflakeGenerator:
    """Claims a worker slot at cold start; renewed by heartbeat for the life of the process."""
    return create_generator(settings())


def shutdown() -> None:
    """Release what the process holds (its Snowflake worker slot), if it ever took it."""
    if _ids.cache_info().currsize:
        _ids().close()
        _ids.cache_clear()


def _merchant(headers: dict[str, str] | None) -> Merchant:
    value = header(headers, "Authorization") or ""
    scheme, _, api_key = value.partition(" ")
    if scheme.lower() != "bearer" or not api_key.strip():
        raise ApiError(401, "Unauthorized", "send the merchant API key as 'Authorization: Bearer <key>'",
                       headers={"WWW-Authenticate": "Bearer"})
    try:
        with db_engine(settings()).connect() as conn:
            merchant = authenticate(conn, api_key.strip())
    except SQLAlchemyError as error:
        raise unavailable("the database") from error
    if merchant is None:
        raise ApiError(401, "Unauthorized", "the API key is not valid", headers={"WWW-Authenticate": "Bearer"})
    return merchant


def _proxy(result: dict[str, Any]) -> Response[str]:
    return Response(status_code=int(result["statusCode"]), body=str(result["body"]),
                    headers=dict(result.get("headers") or {}), content_type=None)


@app.post("/v1/payments")
def create_payment() -> Response[str]:
    event = app.current_event
    merchant = _merchant(event.headers)
    key = idempotency_key(event.headers)
    request, fingerprint = parse_body(event.body)
    return _proxy(run_payment(settings=settings(), gate=_gate(), ids=_ids(), merchant=merchant, key=key,
                              request=request, fingerprint=fingerprint))


@app.get("/v1/payments/<payment_id>")
def show_payment(payment_id: str) -> Response[str]:
    merchant = _merchant(app.current_event.headers)
    if not _PAYMENT_ID.match(payment_id) or int(payment_id) >= 2**63:
        raise ApiError(400, "PaymentIdMalformed", "the payment id is a decimal number of at most 19 digits",
                       "payment_id")
    try:
        with db_engine(settings()).connect() as conn:
            payment = get_payment(conn, payment_id=int(payment_id))
    except SQLAlchemyError as error:
        raise unavailable("the database") from error
    if payment is None or payment.merchant_id != merchant.id:  # another merchant's payment does not exist for you
        raise ApiError(404, "PaymentNotFound", f"no payment {payment_id}", "payment_id")
    return _proxy(json_response(200, payment_body(payment)))


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


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    result: dict[str, Any] = app.resolve(event, context)
    return result
