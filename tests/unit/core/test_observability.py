"""core.observability: one invocation's log keys, its metrics published once as EMF, and nothing written or traced
off Lambda unless asked for. What the handlers write is read from stdout (capsys), as CloudWatch Logs reads it."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from core import observability
from core import telemetry_names as names
from local.http.apigateway import new_context
from tests.telemetry_support import EMF_ON, log_lines, metrics, named

PROJECT_ROOT = Path(__file__).resolve().parents[3]
LAMBDA_ONLY = ("LAMBDA_TASK_ROOT", "POWERTOOLS_METRICS_DISABLED", "POWERTOOLS_TRACE_DISABLED", "POWERTOOLS_DEV",
               "POWERTOOLS_SERVICE_NAME", names.METRICS_NAMESPACE_ENV)
CONTEXT_KEYS = ("function_name", "function_arn", "function_memory_size", "function_request_id", "cold_start")


@pytest.fixture(autouse=True)
def off_lambda(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a developer's machine: no Lambda, no Powertools switches, logs at INFO."""
    for name in LAMBDA_ONLY:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOG_LEVEL", "INFO")


@pytest.fixture
def emf(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in EMF_ON.items():
        monkeypatch.setenv(name, value)


log = observability.logger(names.SERVICE_STEPS)


def test_an_invocation_logs_the_lambda_context_and_the_payment_as_correlation_id(
        capsys: pytest.CaptureFixture[str]) -> None:
    context = new_context("paysaga-ParkPayment")
    with observability.invocation("ParkPayment", context, service=names.SERVICE_STEPS, payment_id=7001,
                                  merchant_id="m_1", step="ParkPayment"):
        log.warning("inside")
        observability.logger(names.SERVICE_WEBHOOKS).warning("another service's logger, same invocation")
    log.warning("after")

    inside, other, after = log_lines(capsys.readouterr().out)
    for line in (inside, other):
        assert line["correlation_id"] == "7001" and line["merchant_id"] == "m_1" and line["step"] == "ParkPayment"
        assert line["function_name"] == "paysaga-ParkPayment"
        assert line["function_request_id"] == context.aws_request_id
        assert line["function_arn"] == context.invoked_function_arn
        assert line["function_memory_size"] == context.memory_limit_in_mb
        assert isinstance(line["cold_start"], bool)
    assert inside["service"] == names.SERVICE_STEPS and other["service"] == names.SERVICE_WEBHOOKS
    assert not {"correlation_id", "merchant_id", "step", *CONTEXT_KEYS} & after.keys(), after


def test_the_keys_are_the_invocations_own_thread_and_a_nested_one_gives_them_back(
        capsys: pytest.CaptureFixture[str]) -> None:
    elsewhere = threading.Event()

    def other_thread() -> None:
        log.warning("another thread")
        elsewhere.set()

    with observability.invocation("outer", None, service=names.SERVICE_START, payment_id=1):
        with observability.invocation("inner", new_context("paysaga-ValidatePayment"),
                                      service=names.SERVICE_STEPS, payment_id=2):
            log.warning("inner")
        log.warning("outer again")
        threading.Thread(target=other_thread).start()
        assert elsewhere.wait(5)
        with observability.correlated(3):
            log.warning("one payment of several")
        log.warning("outer at the end")

    lines = {line["message"]: line for line in log_lines(capsys.readouterr().out)}
    assert lines["inner"]["correlation_id"] == "2" and lines["inner"]["function_name"] == "paysaga-ValidatePayment"
    assert lines["outer again"]["correlation_id"] == "1" and "function_name" not in lines["outer again"]
    assert "correlation_id" not in lines["another thread"]
    assert lines["one payment of several"]["correlation_id"] == "3"
    assert lines["outer at the end"]["correlation_id"] == "1"


def test_metrics_are_published_once_when_the_invocation_ends(emf: None, capsys: pytest.CaptureFixture[str]) -> None:
    with observability.invocation("RejectPayment", None, service=names.SERVICE_STEPS) as call:
        observability.count(names.PAYMENTS_DECLINED, **{names.DIMENSION_ERROR: "PaymentDeclined"})
        observability.count(names.PAYMENTS_FINISHED, **{names.DIMENSION_OUTCOME: "failed"})
        call.milliseconds(names.STEP_LATENCY_MS, 12.5, **{names.DIMENSION_STEP: "RejectPayment"})
        call.count(names.STEP_FAULTS, **{names.DIMENSION_STEP: "RejectPayment"})
        assert metrics(capsys.readouterr().out) == []  # nothing before the end
    out = capsys.readouterr().out

    emitted = {(m.name, tuple(m.dimensions.items())): m for m in metrics(out)}
    assert set(emitted) == {(names.PAYMENTS_DECLINED, (("error", "PaymentDeclined"),)),
                            (names.PAYMENTS_FINISHED, (("outcome", "failed"),)),
                            (names.STEP_LATENCY_MS, (("step", "RejectPayment"),)),
                            (names.STEP_FAULTS, (("step", "RejectPayment"),))}
    assert {m.namespace for m in emitted.values()} == {names.NAMESPACE}
    latency = emitted[(names.STEP_LATENCY_MS, (("step", "RejectPayment"),))]
    assert latency.unit == "Milliseconds" and latency.values == [12.5]
    assert emitted[(names.PAYMENTS_DECLINED, (("error", "PaymentDeclined"),))].unit == "Count"
    # One EMF document per dimension set (the latency and the fault share theirs), no service dimension.
    documents = [line for line in out.splitlines() if '"_aws"' in line]
    assert len(documents) == 3 and all('"service"' not in doc for doc in documents)


def test_an_invocation_without_metrics_writes_none_and_does_not_raise(
        emf: None, capsys: pytest.CaptureFixture[str]) -> None:
    with observability.invocation("GET /v1/payments/{id}", None, service=names.SERVICE_START):
        pass
    assert capsys.readouterr().out == ""


def test_off_lambda_no_metric_is_written(capsys: pytest.CaptureFixture[str]) -> None:
    assert not observability.metrics_enabled() and not observability.tracing_enabled()
    with observability.invocation("ParkPayment", None, service=names.SERVICE_STEPS):
        observability.count(names.PAYMENTS_PARKED)
    observability.count(names.PAYMENTS_PARKED)  # outside any invocation: published at once, i.e. not at all here
    assert capsys.readouterr().out == ""


def test_on_lambda_metrics_and_traces_are_on_unless_switched_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    assert observability.metrics_enabled() and observability.tracing_enabled()
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    assert not observability.metrics_enabled() and not observability.tracing_enabled()
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED")
    monkeypatch.setenv("POWERTOOLS_DEV", "true")
    assert not observability.metrics_enabled()


def test_the_namespace_can_be_the_stacks_own_and_the_service_is_no_dimension(
        emf: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(names.METRICS_NAMESPACE_ENV, "paysaga-staging")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", names.SERVICE_STEPS)  # as the CDK stack may set it
    observability.count(names.PAYMENTS_PARKED)
    out = capsys.readouterr().out
    (parked,) = named(out, names.PAYMENTS_PARKED)
    assert parked.namespace == "paysaga-staging" and parked.dimensions == {} and parked.values == [1.0]
    assert '"service"' not in out


def test_no_local_process_imports_the_xray_sdk_or_calls_a_daemon() -> None:
    """Off Lambda the Tracer is never made: the X-Ray SDK (which makes a client at import) stays unimported."""
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp"}
    probe = ("import sys, saga.handler, saga.sync, saga.webhooks, steps.park, steps.authorize, steps.notify; "
             "print(sorted(m for m in sys.modules if m.startswith('aws_xray_sdk')))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
