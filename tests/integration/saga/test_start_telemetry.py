"""The start function's telemetry: POST /v1/payments through the handler (the saga on the local runtime, its steps
in-process), then GET: each answer is logged with the Lambda context and the payment as correlation_id, and POST's
latency is emitted by the status class of its answer. A payment in a currency the merchant refuses ends in
ValidatePayment, so nothing but PostgreSQL and the AWS emulator is needed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from ulid import ULID

from core import telemetry_names as names
from core.db import engine
from core.settings import Settings
from local.http.apigateway import new_context, to_event
from local.saga_runtime import local_services
from saga.bootstrap import Services
from saga.handler import make_handler
from saga.merchant_keys import create_merchant
from tests.telemetry_support import EMF_ON, log_lines, named


@pytest.fixture
def services(app_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Services]:
    monkeypatch.delenv("LAMBDA_TASK_ROOT", raising=False)
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    for name, value in EMF_ON.items():
        monkeypatch.setenv(name, value)
    made = local_services(app_settings)
    yield made
    made.close()


def _request(method: str, path: str, api_key: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    headers = [("Authorization", f"Bearer {api_key}"), ("Content-Type", "application/json")]
    if method == "POST":
        headers.append(("Idempotency-Key", str(ULID())))
    return to_event(method=method, path=path, query=[], headers=headers, source_ip="127.0.0.1",
                    body=json.dumps(body).encode() if body is not None else b"")


def test_the_start_handler_logs_the_payment_as_correlation_id_and_emits_its_latency(
        services: Services, capsys: pytest.CaptureFixture[str]) -> None:
    with engine(services.settings).begin() as conn:
        merchant_id, api_key = create_merchant(conn, name="Telemetry Shop", currencies=["EUR"], gateway="sandbox")
    handle = make_handler(services)
    context = new_context("paysaga-start")
    answer = handle(_request("POST", "/v1/payments", api_key, {
        "amount_minor": 1999, "currency": "USD", "payment_method_token": "tok_approve",
        "customer_reference": "cus_1", "order_reference": "ord_1"}), context)
    assert answer["statusCode"] == 402, answer
    payment_id = json.loads(answer["body"])["payment"]["id"]
    out = capsys.readouterr().out

    (answered,) = [line for line in log_lines(out) if line["message"] == "answered"]
    assert answered["correlation_id"] == payment_id and answered["merchant_id"] == merchant_id
    assert answered["function_name"] == "paysaga-start"
    assert answered["function_request_id"] == context.aws_request_id
    assert answered["service"] == names.SERVICE_START
    assert answered["route"] == "/v1/payments" and answered["status"] == 402
    (latency,) = named(out, names.START_LATENCY_MS)
    assert latency.dimensions == {names.DIMENSION_OUTCOME: "4xx"} and latency.unit == "Milliseconds"
    # The saga's steps ran in this process (the local runtime's threads) and counted the outcome.
    assert [m.dimensions for m in named(out, names.PAYMENTS_DECLINED)] == [
        {names.DIMENSION_ERROR: "CurrencyNotSupported"}]
    assert [m.dimensions for m in named(out, names.PAYMENTS_FINISHED)] == [{names.DIMENSION_OUTCOME: "rejected"}]

    shown = handle(_request("GET", f"/v1/payments/{payment_id}", api_key), new_context("paysaga-start"))
    assert shown["statusCode"] == 200
    out = capsys.readouterr().out
    (answered,) = [line for line in log_lines(out) if line["message"] == "answered"]
    assert answered["correlation_id"] == payment_id and answered["route"] == "/v1/payments/{id}"
    assert not named(out, names.START_LATENCY_MS)  # GET is not the start's latency
