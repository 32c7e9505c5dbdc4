"""The step wrapper's telemetry (steps.runtime): every invocation's latency by step; a fault counted, a business
outcome not; what a body counted before it raised is dropped. Bodies here are stand-ins; tests/integration/steps
runs the real steps."""

from __future__ import annotations

from typing import Any

import pytest

from core import observability
from core import telemetry_names as names
from local.http.apigateway import new_context
from steps.errors import PaymentDeclined, TransientError
from steps.gateway.port import GatewayResult, GatewayStatus, Operation, PaymentSnapshot
from steps.gateway.traced import TracedGateway, traced
from steps.runtime import StepInput, StepResult, step
from tests.telemetry_support import EMF_ON, log_lines, metrics, named

EVENT = {"payment_id": "7000000000000000001", "merchant_id": "m_test", "lease_token": 3}


@pytest.fixture(autouse=True)
def emf(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAMBDA_TASK_ROOT", raising=False)
    monkeypatch.setenv("LOG_LEVEL", "INFO")
    for name, value in EMF_ON.items():
        monkeypatch.setenv(name, value)


@step("TestStep")
def _counts_then_returns(data: StepInput) -> StepResult:
    observability.count(names.PAYMENTS_PARKED)
    return {"payment_id": str(data.payment_id)}


@step("TestStep")
def _counts_then_faults(data: StepInput) -> StepResult:
    observability.count(names.PAYMENTS_PARKED)
    raise TransientError("the database went away")


@step("TestStep")
def _declines(data: StepInput) -> StepResult:
    raise PaymentDeclined("the card was declined")


def _one(out: str, name: str) -> dict[str, str]:
    (metric,) = named(out, name)
    return metric.dimensions


def test_a_step_emits_its_latency_and_what_its_body_counted(capsys: pytest.CaptureFixture[str]) -> None:
    assert _counts_then_returns(dict(EVENT), new_context("paysaga-TestStep")) == {"payment_id": EVENT["payment_id"]}
    out = capsys.readouterr().out
    assert _one(out, names.STEP_LATENCY_MS) == {names.DIMENSION_STEP: "TestStep"}
    assert _one(out, names.PAYMENTS_PARKED) == {}
    assert named(out, names.STEP_FAULTS) == []


def test_a_fault_is_counted_and_what_the_body_counted_is_dropped(capsys: pytest.CaptureFixture[str]) -> None:
    context = new_context("paysaga-TestStep")
    with pytest.raises(TransientError):
        _counts_then_faults(dict(EVENT), context)
    out = capsys.readouterr().out
    assert _one(out, names.STEP_FAULTS) == {names.DIMENSION_STEP: "TestStep"}
    assert _one(out, names.STEP_LATENCY_MS) == {names.DIMENSION_STEP: "TestStep"}
    assert named(out, names.PAYMENTS_PARKED) == []
    (warning,) = [line for line in log_lines(out) if line["level"] == "WARNING"]
    assert warning["error"] == "TransientError" and warning["correlation_id"] == EVENT["payment_id"]
    assert warning["function_request_id"] == context.aws_request_id and warning["step"] == "TestStep"


def test_a_business_outcome_is_not_a_fault(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(PaymentDeclined):
        _declines(dict(EVENT), None)  # a test's call without a Lambda context
    out = capsys.readouterr().out
    assert named(out, names.STEP_FAULTS) == []
    assert [m.name for m in metrics(out)] == [names.STEP_LATENCY_MS]
    (info,) = [line for line in log_lines(out) if line["level"] == "INFO"]
    assert info["message"] == "step ended with PaymentDeclined" and info["correlation_id"] == EVENT["payment_id"]
    assert "function_name" not in info


def test_a_malformed_input_is_a_fault_of_the_step(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="payment_id"):
        _counts_then_returns({"merchant_id": "m_test"}, None)
    assert _one(capsys.readouterr().out, names.STEP_FAULTS) == {names.DIMENSION_STEP: "TestStep"}


class _Gateway:
    name = "sandbox"
    lookup_is_complete = True

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def _result(self, operation: Operation, status: GatewayStatus, **call: Any) -> GatewayResult:
        self.calls.append((operation.value, call))
        return GatewayResult(operation=operation, status=status, payment_id="1", idempotency_key="1",
                             gateway_reference="ref", operation_reference="ref", amount_minor=100, currency="EUR")

    def authorize(self, **call: Any) -> GatewayResult:
        return self._result(Operation.AUTHORIZE, GatewayStatus.AUTHORIZED, **call)

    def capture(self, **call: Any) -> GatewayResult:
        return self._result(Operation.CAPTURE, GatewayStatus.CAPTURED, **call)

    def cancel(self, **call: Any) -> GatewayResult:
        return self._result(Operation.VOID, GatewayStatus.VOIDED, **call)

    def refund(self, **call: Any) -> GatewayResult:
        return self._result(Operation.REFUND, GatewayStatus.REFUNDED, **call)

    def lookup(self, **call: Any) -> PaymentSnapshot | None:
        self.calls.append(("lookup", call))
        return None

    def close(self) -> None:
        self.calls.append(("close", {}))


def test_the_traced_gateway_hands_every_call_through_and_only_on_lambda_is_used() -> None:
    inner = _Gateway()
    assert traced(inner) is inner  # off Lambda: the adapter as it is
    gateway = traced(inner, tracing=True)
    assert isinstance(gateway, TracedGateway) and gateway.name == "sandbox" and gateway.lookup_is_complete
    assert gateway.authorize(payment_id="1", amount_minor=100, currency="EUR", card_token="tok").status \
        is GatewayStatus.AUTHORIZED
    gateway.capture(payment_id="1", gateway_reference="ref", amount_minor=100, currency="EUR")
    gateway.cancel(payment_id="1", gateway_reference="ref")
    gateway.refund(payment_id="1", gateway_reference="ref", amount_minor=100, currency="EUR")
    assert gateway.lookup(payment_id="1") is None
    gateway.close()
    assert [op for op, _ in inner.calls] == ["authorize", "capture", "void", "refund", "lookup", "close"]
    assert inner.calls[0][1] == {"payment_id": "1", "amount_minor": 100, "currency": "EUR", "card_token": "tok"}
