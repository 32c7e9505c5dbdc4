"""The execution timeline from its two sources: the local runtime's history (as saga_executions.history stores it)
and an Express state machine's CloudWatch Logs (recorded events in the format Step Functions writes), which must
read the same for the same run; and the redaction every shown input, output and cause goes through."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from core.settings import Settings
from infra.names import ResourceNames
from local.asl import LocalStepFunctions, ManualClock
from saga.console.timeline import (
    CloudWatchLogsSource,
    LocalHistorySource,
    StateStep,
    Timeline,
    log_group_of,
    redact,
    timeline_source,
)
from saga.sfn import history_of
from steps.registry import Workflow
from store.executions import ExecutionRecord

FIXTURES = Path(__file__).parent / "fixtures"
# The run both fixtures record: ValidatePayment succeeds; AuthorizeGateway fails with GatewayUnavailable, is retried,
# is declined, and its Catch takes the execution to RejectPayment; the Fail state PaymentFailed ends it.
RECORDED_ARN = "arn:aws:states:eu-west-1:123456789012:express:paysaga-payment-saga:pay-7301-1"
T0 = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)


def _record(history: Any = None, *, status: str = "FAILED", error: str | None = "PaymentDeclined",
            cause: str | None = "declined by the issuer", arn: str = RECORDED_ARN) -> ExecutionRecord:
    return ExecutionRecord(execution_arn=arn, payment_id=7301, name=arn.rsplit(":", 1)[1], input={},
                           status=status, error=error, cause=cause, history=history,
                           started_at=T0 - timedelta(milliseconds=40), stopped_at=T0 + timedelta(seconds=3),
                           replay_of=None)


def _local_history() -> list[dict[str, Any]]:
    return list(json.loads((FIXTURES / "declined_after_retry.local.json").read_text()))


def _cloudwatch_messages() -> list[dict[str, Any]]:
    return list(json.loads((FIXTURES / "declined_after_retry.cloudwatch.json").read_text()))


class FakeLogs:
    """filter_log_events over recorded log events: pages of `page_size`, the way CloudWatch Logs answers."""

    def __init__(self, messages: list[dict[str, Any]], *, page_size: int = 8, missing: bool = False) -> None:
        self.items = [{"logStreamName": "states/paysaga-payment-saga/2026-12-03-10-00/0f1e2d3c",
                       "timestamp": int(m["event_timestamp"]), "message": json.dumps(m),
                       "ingestionTime": int(m["event_timestamp"]) + 900, "eventId": f"{i:056d}"}
                      for i, m in enumerate(messages)]
        self.page_size = page_size
        self.missing = missing
        self.requests: list[dict[str, Any]] = []

    def filter_log_events(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        if self.missing:
            raise ClientError({"Error": {"Code": "ResourceNotFoundException",
                                         "Message": "The specified log group does not exist."}}, "FilterLogEvents")
        phrase = request["filterPattern"].strip('"')
        matching = [item for item in self.items if phrase in item["message"]
                    and request["startTime"] <= item["timestamp"] <= request["endTime"]]
        start = int(request.get("nextToken", "0"))
        page = matching[start:start + self.page_size]
        answer: dict[str, Any] = {"events": page, "searchedLogStreams": []}
        if start + self.page_size < len(matching):
            answer["nextToken"] = str(start + self.page_size)
        return answer


def _by_name(timeline: Timeline) -> dict[str, StateStep]:
    return {step.name: step for step in timeline.steps}


def _without_source(timeline: Timeline) -> Timeline:
    return Timeline(**{**{f: getattr(timeline, f) for f in Timeline.__dataclass_fields__}, "source": ""})


# ---- the recorded run, from each source -------------------------------------------------------------------------


def test_the_local_history_reads_state_by_state_with_the_retry_the_catch_and_the_fail() -> None:
    timeline = LocalHistorySource().timeline(_record(_local_history()))

    assert timeline.source == "local-history" and timeline.execution_arn == RECORDED_ARN
    assert [(s.name, s.state_type, s.status, s.retries) for s in timeline.steps] == [
        ("ValidatePayment", "Task", "succeeded", 0),
        ("AuthorizeGateway", "Task", "caught", 1),
        ("RejectPayment", "Task", "succeeded", 0),
        ("PaymentFailed", "Fail", "failed", 0),
    ]
    steps = _by_name(timeline)
    validate = steps["ValidatePayment"]
    assert validate.entered_at == T0 and validate.exited_at == T0 + timedelta(milliseconds=125)
    assert validate.duration_ms == 125 and validate.error is None and validate.cause is None
    assert validate.output["steps"]["validate"] == {"result": {"fraud_score": 3}}

    authorize = steps["AuthorizeGateway"]
    # 250 ms, the 2 s back-off, 250 ms: the state's whole time, retries included.
    assert authorize.duration_ms == 2500
    assert authorize.error == "PaymentDeclined"
    assert json.loads(authorize.cause or "")["errorMessage"] == "card tok_…4242 declined: do_not_honor"
    assert authorize.output["error"]["Error"] == "PaymentDeclined"  # the Catch's ResultPath

    failed = steps["PaymentFailed"]
    assert (failed.error, failed.cause) == ("PaymentDeclined", "declined by the issuer")
    assert failed.exited_at == T0 + timedelta(milliseconds=2675) and failed.duration_ms == 0 and failed.output is None

    assert (timeline.status, timeline.error, timeline.cause) == ("FAILED", "PaymentDeclined", "declined by the issuer")
    assert timeline.started_at == T0 and timeline.stopped_at == T0 + timedelta(milliseconds=2675)


def test_every_shown_input_and_output_is_redacted() -> None:
    timeline = LocalHistorySource().timeline(_record(_local_history()))
    shown = json.dumps([[s.input, s.output, s.cause] for s in timeline.steps] + [timeline.cause])
    assert "tok_visa_4242" not in shown and "psk_abcdefghijklmnop" not in shown
    validate = _by_name(timeline)["ValidatePayment"]
    assert validate.input["payment_method_token"] == "tok_…4242"
    assert validate.input["merchant"] == {"id": "m_1", "api_key": "[redacted]"}
    assert validate.input["amount_minor"] == 2500  # the rest is shown as it is


def test_recorded_cloudwatch_logs_give_the_same_timeline_as_the_local_history() -> None:
    logs = FakeLogs(_cloudwatch_messages(), page_size=8)
    from_logs = CloudWatchLogsSource(logs, log_group_of).timeline(_record())
    from_history = LocalHistorySource().timeline(_record(_local_history()))

    assert from_logs.source == "cloudwatch-logs"
    assert len(from_logs.steps) == 4
    assert _without_source(from_logs) == _without_source(from_history)
    # Paginated: 21 events in pages of 8, every request on the state machine's log group for this execution only.
    assert len(logs.requests) == 3 and logs.requests[-1]["nextToken"] == "16"
    assert {r["logGroupName"] for r in logs.requests} == {"/aws/vendedlogs/states/paysaga-payment-saga"}
    assert all(RECORDED_ARN in r["filterPattern"] for r in logs.requests)


def test_log_events_arriving_out_of_order_and_twice_read_the_same() -> None:
    messages = _cloudwatch_messages()
    shuffled = messages[10:] + messages[:12]  # two streams' worth, overlapping: events 11 and 12 come twice
    random.Random(3).shuffle(shuffled)
    from_logs = CloudWatchLogsSource(FakeLogs(shuffled), log_group_of).timeline(_record())
    from_history = LocalHistorySource().timeline(_record(_local_history()))
    assert _without_source(from_logs) == _without_source(from_history)


def test_another_execution_in_the_same_log_group_is_left_out() -> None:
    messages = _cloudwatch_messages()
    # pay-7301-10 starts with this execution's ARN: the phrase search finds it; the exact check drops it.
    other = [{**m, "execution_arn": m["execution_arn"].replace(":pay-7301-1:", ":pay-7301-10:")} for m in messages]
    from_logs = CloudWatchLogsSource(FakeLogs(messages + other, page_size=50), log_group_of).timeline(_record())
    assert [s.name for s in from_logs.steps] == ["ValidatePayment", "AuthorizeGateway", "RejectPayment",
                                                 "PaymentFailed"]


def test_a_catch_without_an_exit_event_still_reads_as_caught() -> None:
    """Should a log lack the caught state's exit (best-effort delivery), the next state's entry closes it."""
    messages = [m for m in _cloudwatch_messages() if m["id"] != "14"]  # AuthorizeGateway's TaskStateExited
    for m in messages:
        if m["id"] == "15":
            m["previous_event_id"] = "13"  # RejectPayment entered right after the TaskFailed
    steps = _by_name(CloudWatchLogsSource(FakeLogs(messages), log_group_of).timeline(_record()))
    authorize = steps["AuthorizeGateway"]
    assert (authorize.status, authorize.retries, authorize.error, authorize.duration_ms, authorize.output) == (
        "caught", 1, "PaymentDeclined", 2500, None)


def test_logs_at_level_error_give_what_they_have() -> None:
    """ERROR logs only the failures, without execution data: the Fail state and the execution's end remain."""
    kept = {"TaskFailed", "FailStateEntered", "ExecutionFailed"}
    messages = [{**m, "details": {k: v for k, v in m["details"].items() if k not in {"input", "output"}}}
                for m in _cloudwatch_messages() if m["type"] in kept]
    timeline = CloudWatchLogsSource(FakeLogs(messages), log_group_of).timeline(_record())
    assert [(s.name, s.status, s.input) for s in timeline.steps] == [("PaymentFailed", "failed", None)]
    assert (timeline.status, timeline.error) == ("FAILED", "PaymentDeclined")


def test_no_log_group_gives_the_record_alone() -> None:
    timeline = CloudWatchLogsSource(FakeLogs([], missing=True), log_group_of).timeline(_record())
    assert timeline.steps == () and timeline.status == "FAILED" and timeline.error == "PaymentDeclined"
    assert timeline.started_at == T0 - timedelta(milliseconds=40)


def test_a_running_execution_shows_its_open_state_as_running() -> None:
    history = [e for e in _local_history() if e["id"] <= 12]  # in AuthorizeGateway's second attempt
    timeline = LocalHistorySource().timeline(_record(history, status="RUNNING", error=None, cause=None))
    last = timeline.steps[-1]
    assert (last.name, last.status, last.retries, last.exited_at, last.duration_ms) == (
        "AuthorizeGateway", "running", 1, None, None)
    assert last.error == "GatewayUnavailable"  # the retried error, shown while it runs
    assert timeline.status == "RUNNING" and timeline.stopped_at == T0 + timedelta(seconds=3)


def test_a_record_without_history_has_no_steps() -> None:
    assert LocalHistorySource().timeline(_record(None)).steps == ()


def test_the_local_runtime_writes_what_the_reader_reads() -> None:
    """A live run of the local interpreter (not a fixture): a Parallel state, a retried Lambda, a caught failure."""
    definition = {"StartAt": "Both", "States": {
        "Both": {"Type": "Parallel", "ResultPath": "$.both", "Next": "Charge", "Branches": [
            {"StartAt": "Left", "States": {"Left": {"Type": "Pass", "Result": 1, "End": True}}},
            {"StartAt": "Right", "States": {"Right": {"Type": "Wait", "Seconds": 3, "End": True}}}]},
        "Charge": {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:123456789012:function:charge",
                   "Next": "Done",
                   "Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 1, "MaxAttempts": 2}],
                   "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Done"}]},
        "Done": {"Type": "Succeed"}}}
    clock = ManualClock(start=T0)

    class Flaky(Exception):
        pass

    def charge(event: Any, context: Any) -> Any:
        clock.advance(0.5)
        raise Flaky("secret=hunter2 refused")

    runtime = LocalStepFunctions(lambda name: charge, clock=clock, rng=random.Random(1))
    machine = runtime.create_state_machine(name="m", definition=json.dumps(definition), roleArn="r")
    response = runtime.start_sync_execution(stateMachineArn=machine["stateMachineArn"], name="n", input="{}")
    record = _record(history_of(runtime, response["executionArn"]), status=response["status"], error=None,
                     cause=None)

    timeline = LocalHistorySource().timeline(record)
    steps = _by_name(timeline)
    assert [s.name for s in timeline.steps][:1] == ["Both"] and set(steps) == {"Both", "Left", "Right", "Charge",
                                                                                "Done"}
    assert steps["Both"].status == "succeeded" and steps["Both"].duration_ms == 3000
    assert steps["Both"].output == {"both": [1, {}]}
    assert (steps["Charge"].status, steps["Charge"].retries, steps["Charge"].error) == ("caught", 2, "Flaky")
    assert steps["Charge"].duration_ms == 4500  # three attempts of 0.5 s, back-offs of 1 s and 2 s
    assert "hunter2" not in (steps["Charge"].cause or "") and "[redacted]" in (steps["Charge"].cause or "")
    assert steps["Done"].status == "succeeded" and timeline.status == "SUCCEEDED"


# ---- where the logs are -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("workflow", list(Workflow))
def test_the_log_group_is_the_one_the_stack_makes(workflow: Workflow) -> None:
    names = ResourceNames(prefix="paysaga")
    arn = (f"arn:aws:states:eu-west-1:123456789012:express:{names.workflow_state_machine(workflow)}:pay-1:"
           "3f0c8a52-6d1e-4b7a-9c2d-5e8f1a0b7c64")
    assert log_group_of(arn) == names.workflow_log_group(workflow)
    assert log_group_of(arn.rsplit(":", 1)[0]) == names.workflow_log_group(workflow)  # the recorded ARN


def test_a_log_group_needs_an_execution_arn() -> None:
    with pytest.raises(ValueError, match="not a Step Functions execution ARN"):
        log_group_of("pay-7301-1")


# ---- redact -------------------------------------------------------------------------------------------------------


def test_redact_masks_card_tokens_by_key_and_by_value() -> None:
    assert redact({"payment_method_token": "tok_visa_4242"}) == {"payment_method_token": "tok_…4242"}
    assert redact({"payment_method": "pm_card_visa"}) == {"payment_method": "pm_…visa"}
    assert redact({"card_token": "opaque-value"}) == {"card_token": "[redacted]"}
    assert redact({"token": {"nested": "x"}}) == {"token": "[redacted]"}
    assert redact({"payment_method_token": "tok_ab"}) == {"payment_method_token": "tok_…"}  # too short to show
    assert redact({"lease_token": 41}) == {"lease_token": 41}  # a fencing number, not a credential


def test_redact_replaces_secrets_api_keys_passwords_and_signatures() -> None:
    value = {"api_key": "psk_live", "Stripe-Signature": "t=1,v1=abc", "password": "hunter2",
             "webhook_secret": "whsec_x", "hmacSignature": "abc=", "Authorization": "Bearer abc",
             "csrf_token": "t0k", "cvc": "123", "company": "ACME", "idempotency_key": "k-1"}
    assert redact(value) == {"api_key": "[redacted]", "Stripe-Signature": "[redacted]", "password": "[redacted]",
                             "webhook_secret": "[redacted]", "hmacSignature": "[redacted]",
                             "Authorization": "[redacted]", "csrf_token": "[redacted]", "cvc": "[redacted]",
                             "company": "ACME", "idempotency_key": "k-1"}


def test_redact_goes_through_nested_dicts_and_lists() -> None:
    value = {"payment": {"methods": [{"payment_method_token": "tok_mastercard_4444"}, {"api_key": "k"}],
                         "amount_minor": 100, "refunds": [1, 2], "note": None, "ok": True}}
    assert redact(value) == {"payment": {"methods": [{"payment_method_token": "tok_…4444"}, {"api_key": "[redacted]"}],
                                         "amount_minor": 100, "refunds": [1, 2], "note": None, "ok": True}}
    assert redact([["tok_visa_4242"], ("pm_card_visa",)]) == [["tok_…4242"], ("pm_…visa",)]
    assert redact(None) is None and redact(12) == 12


def test_redact_finds_tokens_and_secrets_embedded_in_strings() -> None:
    assert redact("card tok_visa_4242 declined") == "card tok_…4242 declined"
    assert redact("stripe said: sk_test_abc123 is invalid") == "stripe said: [redacted] is invalid"
    assert redact("merchant key psk_AbC-dEf_123 used") == "merchant key [redacted] used"
    assert redact("Authorization: Bearer eyJhbGciOi.x.y") == "Authorization: Bearer [redacted]"
    assert redact("login failed password=hunter2, user=bob") == "login failed password=[redacted], user=bob"
    assert redact("{'payment_method_token': 'tok_amex_0005'}") == "{'payment_method_token': 'tok_…0005'}"
    assert redact("stoken_x and pm_") == "stoken_x and pm_"  # not tokens: inside a word, or nothing after
    assert redact("no secrets here") == "no secrets here"


def test_redact_reads_json_text_inside_strings() -> None:
    cause = json.dumps({"errorMessage": "declined", "errorType": "PaymentDeclined",
                        "request": {"api_key": "abc", "payment_method_token": "tok_visa_4242"}})
    cleaned = json.loads(redact(cause))
    assert cleaned["request"] == {"api_key": "[redacted]", "payment_method_token": "tok_…4242"}
    assert cleaned["errorType"] == "PaymentDeclined"
    untouched = '{"a": 1,  "b": [2]}'
    assert redact(untouched) == untouched  # nothing to hide: the text stays as it was written


# ---- which source ---------------------------------------------------------------------------------------------------


def test_the_source_is_the_local_history_where_the_runtime_keeps_one_else_cloudwatch_logs() -> None:
    settings = Settings(DATABASE_URL="postgresql://u@localhost/db", REDIS_URL="redis://localhost:6379/0",
                        AWS_REGION="eu-west-1")
    assert isinstance(timeline_source(SimpleNamespace(keeps_history=True, settings=settings)), LocalHistorySource)
    on_aws = timeline_source(SimpleNamespace(keeps_history=False, settings=settings))
    assert isinstance(on_aws, CloudWatchLogsSource)
    assert on_aws._logs.meta.service_model.service_name == "logs"
    assert on_aws._logs.meta.region_name == "eu-west-1"
