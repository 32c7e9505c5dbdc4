"""The real steps' telemetry against PostgreSQL and the AWS emulator, called as Lambda calls them (with a Lambda
context): each logs JSON with the payment as correlation_id and the Lambda context, emits its latency by step, and
counts what happened to the payment: parked (PaymentsParked), declined (PaymentsDeclined by error, never parked),
finished (PaymentsFinished by outcome), published (OutboxLag)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from ulid import ULID

from core import telemetry_names as names
from core.db import engine
from core.settings import Settings
from local.http.apigateway import new_context
from saga.merchant_keys import create_merchant
from steps import notify, park, validate
from steps.errors import CurrencyNotSupported
from store.leases import Lease, take_lease
from store.outbox import insert_event
from store.payments import insert_payment
from tests.telemetry_support import EMF_ON, log_lines, metrics, named

_ids = itertools.count(7_100_000_000_000_000_000)


@pytest.fixture
def emf(app_settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    monkeypatch.delenv("LAMBDA_TASK_ROOT", raising=False)
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    for name, value in EMF_ON.items():
        monkeypatch.setenv(name, value)
    yield app_settings


def _payment(settings: Settings, *, currency: str = "EUR", status: str = "created") -> dict[str, Any]:
    """A payment as the start path writes it, and the input of the execution holding its lease."""
    payment_id = next(_ids)
    with engine(settings).begin() as conn:
        merchant_id, _ = create_merchant(conn, name="Telemetry Shop", currencies=["EUR"], gateway="sandbox")
        insert_payment(conn, payment_id=payment_id, merchant_id=merchant_id, amount_minor=1999, currency=currency,
                       gateway="sandbox", customer_ref=f"cus_{payment_id}", order_ref="o",
                       payment_method_token="tok_approve", status=status)
        lease = take_lease(conn, payment_id=payment_id, holder="test-telemetry", lease_ms=60_000)
    assert isinstance(lease, Lease)
    return {"payment_id": str(payment_id), "merchant_id": merchant_id, "lease_token": lease.token}


def _dimensions(out: str, name: str) -> list[dict[str, str]]:
    return [m.dimensions for m in named(out, name)]


def test_a_parked_payment_logs_its_correlation_id_and_counts_as_parked(
        emf: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    event = _payment(emf)
    context = new_context("paysaga-ParkPayment")
    failed = {**event, "error": {"Error": "InvariantViolated", "Cause": "{}"}}
    assert park.handler(failed, context) == {"status": "needs_attention", "parked": True}
    out = capsys.readouterr().out

    (parked,) = [line for line in log_lines(out) if line["message"].startswith("payment parked")]
    assert parked["correlation_id"] == event["payment_id"] and parked["merchant_id"] == event["merchant_id"]
    assert parked["function_name"] == "paysaga-ParkPayment"
    assert parked["function_request_id"] == context.aws_request_id
    assert parked["function_arn"] == context.invoked_function_arn and "cold_start" in parked
    assert parked["service"] == names.SERVICE_STEPS and parked["level"] == "WARNING"
    assert parked["error"] == "InvariantViolated"

    assert _dimensions(out, names.PAYMENTS_PARKED) == [{}]
    assert _dimensions(out, names.STEP_LATENCY_MS) == [{names.DIMENSION_STEP: "ParkPayment"}]
    assert not named(out, names.PAYMENTS_DECLINED) and not named(out, names.PAYMENTS_FINISHED)
    assert not named(out, names.STEP_FAULTS)

    assert park.handler(failed, context)["parked"] is True  # parked before: nothing new to count
    assert not named(capsys.readouterr().out, names.PAYMENTS_PARKED)


def test_a_decline_counts_by_its_error_and_is_never_parked(emf: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    event = _payment(emf)
    declined = {**event, "error": {"Error": "PaymentDeclined", "Cause": '{"errorMessage": "declined"}'}}
    assert validate.reject_payment(declined, new_context("paysaga-RejectPayment"))["error"] == "PaymentDeclined"
    out = capsys.readouterr().out

    assert _dimensions(out, names.PAYMENTS_DECLINED) == [{names.DIMENSION_ERROR: "PaymentDeclined"}]
    assert _dimensions(out, names.PAYMENTS_FINISHED) == [{names.DIMENSION_OUTCOME: "failed"}]
    assert _dimensions(out, names.STEP_LATENCY_MS) == [{names.DIMENSION_STEP: "RejectPayment"}]
    assert not named(out, names.PAYMENTS_PARKED) and not named(out, names.STEP_FAULTS)

    validate.reject_payment(declined, None)  # a redelivery returns the recorded outcome: counted once
    assert [m.name for m in metrics(capsys.readouterr().out)] == [names.STEP_LATENCY_MS]


def test_a_business_outcome_is_logged_with_the_payment_and_is_no_fault(
        emf: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    event = _payment(emf, currency="USD")
    with pytest.raises(CurrencyNotSupported):
        validate.handler(dict(event), new_context("paysaga-ValidatePayment"))
    out = capsys.readouterr().out
    (outcome,) = [line for line in log_lines(out) if line["message"] == "step ended with CurrencyNotSupported"]
    assert outcome["correlation_id"] == event["payment_id"] and outcome["function_name"] == "paysaga-ValidatePayment"
    assert _dimensions(out, names.STEP_LATENCY_MS) == [{names.DIMENSION_STEP: "ValidatePayment"}]
    assert not named(out, names.STEP_FAULTS)


def test_a_step_that_fails_counts_a_fault(emf: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    missing = {"payment_id": str(next(_ids)), "merchant_id": "mer_nobody", "lease_token": 1}
    with pytest.raises(ValueError, match="does not exist"):
        park.handler(missing, new_context("paysaga-ParkPayment"))
    out = capsys.readouterr().out
    assert _dimensions(out, names.STEP_FAULTS) == [{names.DIMENSION_STEP: "ParkPayment"}]
    assert _dimensions(out, names.STEP_LATENCY_MS) == [{names.DIMENSION_STEP: "ParkPayment"}]


def test_notify_merchant_measures_the_outbox_lag_and_finishes_the_payment(
        emf: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    event = _payment(emf, status="committed")
    with engine(emf).begin() as conn:
        insert_event(conn, event_id=str(ULID()), payment_id=int(event["payment_id"]), event_type="payment.succeeded",
                     payload={"type": "payment.succeeded", "payment_id": event["payment_id"]})
    notify.handler(dict(event), new_context("paysaga-NotifyMerchant"))
    out = capsys.readouterr().out
    (lag,) = named(out, names.OUTBOX_LAG_MS)
    assert lag.dimensions == {} and lag.unit == "Milliseconds" and 0 <= lag.values[0] < 60_000
    assert _dimensions(out, names.PAYMENTS_FINISHED) == [{names.DIMENSION_OUTCOME: "succeeded"}]

    notify.handler(dict(event), None)  # sent before: no second lag, no second finish
    assert [m.name for m in metrics(capsys.readouterr().out)] == [names.STEP_LATENCY_MS]
