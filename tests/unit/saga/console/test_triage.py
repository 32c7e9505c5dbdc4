"""Which executions an engineer should look at (saga.console.triage.needs_attention): the rule the CLI's `look`
column and the console share."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from saga.console.triage import CONCLUDED_ERRORS, needs_attention
from steps.errors import BUSINESS_ERRORS
from store.executions import ExecutionRecord


def _record(status: str, error: str | None, operation: bool = False) -> ExecutionRecord:
    saga_input = {"payment_id": "1", "merchant_id": "mer_1"} | ({"operation_id": "2"} if operation else {})
    return ExecutionRecord(execution_arn="arn:aws:states:eu-west-1:0:express:paysaga:pay-1-x", payment_id=1,
                           name="pay-1-x", input=saga_input, status=status, error=error, cause=None, history=None,
                           started_at=datetime(2026, 12, 3, tzinfo=UTC), stopped_at=None, replay_of=None)


@pytest.mark.parametrize(("status", "error", "payment_status", "look"), [
    # Business outcomes: the saga ended as it should.
    ("FAILED", "PaymentDeclined", "failed", False),
    ("FAILED", "InsufficientFunds", "failed", False),
    ("FAILED", "FraudRejected", "rejected", False),
    ("FAILED", "AmountAboveLimit", "rejected", False),
    ("FAILED", "CaptureFailed", "failed", False),
    ("FAILED", "ExecutionSuperseded", "succeeded", False),  # another execution held the payment
    # Our infrastructure, or the gateway, stayed down: an outcome for the merchant, worth a look for us.
    ("FAILED", "ServiceUnavailable", "failed", True),
    ("FAILED", "GatewayUnavailable", "failed", True),
    # Faults and parked payments.
    ("FAILED", "PaymentNeedsAttention", "needs_attention", True),
    ("FAILED", "InvariantViolated", "failed", True),
    ("FAILED", "States.Runtime", None, True),
    ("FAILED", None, "created", True),
    ("TIMED_OUT", "States.Timeout", "authorized", True),
    ("ABORTED", None, "reserved", True),
    ("FAILED", "PaymentDeclined", "needs_attention", True),  # whatever it ended on, its payment is parked now
    ("FAILED", "PaymentNeedsAttention", "succeeded", False),  # replayed since: the payment succeeded
    ("TIMED_OUT", "States.Timeout", "succeeded", False),
    # Not ended badly: nothing to look at.
    ("SUCCEEDED", None, "succeeded", False),
    ("SUCCEEDED", None, "needs_attention", False),
    ("RUNNING", None, "needs_attention", False),
])
def test_needs_attention(status: str, error: str | None, payment_status: str | None, look: bool) -> None:
    assert needs_attention(_record(status, error), payment_status) is look


def test_every_business_outcome_but_an_outage_is_concluded() -> None:
    outages, superseded = BUSINESS_ERRORS - CONCLUDED_ERRORS, CONCLUDED_ERRORS - BUSINESS_ERRORS
    assert outages == {"ServiceUnavailable", "GatewayUnavailable"}
    assert superseded == {"ExecutionSuperseded"}


def test_an_operation_s_execution_is_judged_on_its_own_whatever_its_payment_s_status() -> None:
    assert needs_attention(_record("FAILED", "OperationPending", operation=True), "succeeded")
    assert not needs_attention(_record("FAILED", "RefundFailed", operation=True), "succeeded")
    assert not needs_attention(_record("FAILED", "OperationPending", operation=False), "succeeded")
