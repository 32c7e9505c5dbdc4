"""Alarms on a dead-lettered notification, failed executions, function errors and API 5xx, all sent to one topic."""

from __future__ import annotations

import inspect
import json
from types import ModuleType
from typing import Any

import pytest

from infra.alarms import REFUND_REFUSED_MESSAGE, SYNC_GAVE_UP_MESSAGE
from saga import sync, webhooks
from steps import registry
from tests.unit.infra.support import START, Synth, functions_by_name, only, settings_default, step_function_ids


def _alarms(synth: Synth) -> list[dict[str, Any]]:
    return [r["Properties"] for r in synth.of_type("AWS::CloudWatch::Alarm").values()]


def _metric_alarms(synth: Synth, metric: str) -> list[dict[str, Any]]:
    return [a for a in _alarms(synth) if metric in json.dumps(a)]


def test_dlq_depth_above_zero(synth: Synth) -> None:
    dlq_id = next(logical_id for logical_id, r in synth.of_type("AWS::SQS::Queue").items()
                  if r["Properties"]["QueueName"] == settings_default("notifications_dlq"))
    (alarm,) = [a for a in _metric_alarms(synth, "ApproximateNumberOfMessagesVisible")]
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}]
    assert alarm["Threshold"] == 0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"


def test_state_machine_executions_failed(synth: Synth) -> None:
    machine_id, _ = only(synth.of_type("AWS::StepFunctions::StateMachine"))
    (alarm,) = _metric_alarms(synth, "ExecutionsFailed")
    assert alarm["Namespace"] == "AWS/States"
    assert alarm["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": machine_id}}]


def test_api_5xx(synth: Synth) -> None:
    (alarm,) = _metric_alarms(synth, "5XXError")
    assert alarm["Namespace"] == "AWS/ApiGateway"


def test_every_function_has_an_errors_alarm(synth: Synth) -> None:
    errors_alarms = json.dumps([a for a in _alarms(synth) if '"Errors"' in json.dumps(a)])
    ids = step_function_ids(synth) | {"start": functions_by_name(synth)[START][0]}
    for step, logical_id in ids.items():
        assert json.dumps({"Ref": logical_id}) in errors_alarms, f"no errors alarm for {step}"
    assert set(ids) == set(registry.HANDLERS) | {"start"}


def test_alarms_notify_the_alarm_topic(synth: Synth) -> None:
    topics = {r["Properties"]["TopicName"]: logical_id for logical_id, r in synth.of_type("AWS::SNS::Topic").items()}
    alarm_topic = {"Ref": topics[f"{registry.FUNCTION_NAME_PREFIX}-alarms"]}
    alarms = _alarms(synth)
    assert len(alarms) >= 4 + len(registry.HANDLERS)
    for alarm in alarms:
        assert alarm["AlarmActions"] == [alarm_topic]
        assert alarm["TreatMissingData"] == "notBreaching"


def test_only_forward_steps_get_error_rate_alarms(synth: Synth) -> None:
    """Compensations and recovery (ParkPayment included) alarm on any error; forward steps on an error rate."""
    ids = step_function_ids(synth)
    rate_alarms = [a for a in _alarms(synth) if "error rate" in json.dumps(a)]
    with_rate = {step for step, logical_id in ids.items() if json.dumps({"Ref": logical_id}) in json.dumps(rate_alarms)}
    assert with_rate == set(registry.with_role(registry.Role.FORWARD))


@pytest.mark.parametrize(("metric", "message", "source"), [
    ("PaymentsLeftParked", SYNC_GAVE_UP_MESSAGE, sync),
    ("RefundsRefused", REFUND_REFUSED_MESSAGE, webhooks),
])
def test_a_logged_line_an_engineer_must_act_on_raises_an_alarm(synth: Synth, metric: str, message: str,
                                                               source: ModuleType) -> None:
    assert f'"{message}"' in inspect.getsource(source), "the filter must match the line the runtime logs"
    patterns = [r["Properties"]["FilterPattern"] for r in synth.of_type("AWS::Logs::MetricFilter").values()]
    assert any(message in pattern for pattern in patterns), patterns
    (alarm,) = _metric_alarms(synth, metric)
    assert alarm["Threshold"] == 0 and alarm["Namespace"] == "paysaga"
