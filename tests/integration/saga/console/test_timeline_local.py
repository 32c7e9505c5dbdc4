"""Real sagas on the local stack's runtime: their recorded history (saga_executions.history, as the start path
stores it) read back as timelines, state by state."""

from __future__ import annotations

import json

from local.gateway_tokens import TOKENS, Scenario
from local.testing.live import LiveStack
from saga.console.timeline import LocalHistorySource, Timeline
from steps.errors import BUSINESS_ERRORS
from store.executions import ExecutionRecord, list_executions
from tests.e2e.api.support import wait_until
from tests.e2e.saga_support import pay


def _finished_record(live: LiveStack, payment_id: str) -> ExecutionRecord:
    def finished() -> ExecutionRecord | None:
        with live.engine.connect() as conn:
            found = list_executions(conn, payment_id=int(payment_id), limit=1)
        return found[0] if found and found[0].status != "RUNNING" and found[0].history else None
    record: ExecutionRecord = wait_until(finished, timeout_s=30, what=f"payment {payment_id}'s execution to end")
    return record


def _shown(timeline: Timeline) -> str:
    return json.dumps([[step.input, step.output, step.cause] for step in timeline.steps] + [timeline.cause],
                      default=str)


def test_recorded_local_histories_read_as_timelines(live: LiveStack) -> None:
    _, api_key = live.new_merchant()
    source = LocalHistorySource()

    # The gateway answers 503 once: AuthorizeGateway's Retry tries again and the payment succeeds.
    flaky = pay(live, api_key, token=TOKENS["sandbox"][Scenario.UNAVAILABLE_FIRST])
    assert flaky.status_code == 201, flaky.text
    retried = source.timeline(_finished_record(live, flaky.json()["id"]))
    steps = {step.name: step for step in retried.steps}
    assert retried.status == "SUCCEEDED" and retried.error is None and retried.source == "local-history"
    assert steps["AuthorizeGateway"].status == "succeeded" and steps["AuthorizeGateway"].retries >= 1
    assert steps["AuthorizeGateway"].error == "GatewayUnavailable"  # the retried error
    assert [step.name for step in retried.steps][:3] == ["ValidatePayment", "ReserveBalance", "AuthorizeGateway"]
    assert retried.steps[-1].state_type == "Succeed" and retried.steps[-1].status == "succeeded"
    assert all(step.status == "succeeded" for step in retried.steps)
    # The sandbox answers the capture's first call 503 too: a retried step names what it retried.
    assert all((step.retries > 0) == (step.error is not None) for step in retried.steps)

    # A decline: AuthorizeGateway's Catch takes the saga through its compensations to the Fail state.
    declined = pay(live, api_key, token=TOKENS["sandbox"][Scenario.DECLINE])
    assert declined.status_code == 402, declined.text
    record = _finished_record(live, declined.json()["payment"]["id"])
    timeline = source.timeline(record)
    steps = {step.name: step for step in timeline.steps}
    assert timeline.status == record.status == "FAILED" and timeline.error == record.error
    assert record.error in BUSINESS_ERRORS
    authorize = steps["AuthorizeGateway"]
    assert authorize.status == "caught" and authorize.error == record.error and authorize.retries == 0
    assert steps["RejectPayment"].status == "succeeded"
    last = timeline.steps[-1]
    assert (last.state_type, last.status, last.error, last.output) == ("Fail", "failed", record.error, None)
    for step in timeline.steps:
        assert step.exited_at is not None and step.duration_ms is not None and step.duration_ms >= 0
        assert step.entered_at <= step.exited_at
    assert [s.entered_at for s in timeline.steps] == sorted(s.entered_at for s in timeline.steps)

    # Each state's input and output as recorded (the saga's input carries ids, never the card token).
    assert str(steps["ValidatePayment"].input["payment_id"]) == declined.json()["payment"]["id"]
    assert steps["AuthorizeGateway"].output["error"]["Error"] == record.error  # the Catch's ResultPath
    shown = _shown(retried) + _shown(timeline)
    assert "tok_decline" not in shown and "tok_5xx_then_success" not in shown
