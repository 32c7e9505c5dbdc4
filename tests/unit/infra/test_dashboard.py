"""The operations dashboard: one per stack (named from its prefix), on the metrics the runtime emits, with the
dimension values the runtime's own facts give (registry steps, final statuses, business error names)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from core import event_rules
from core import telemetry_names as names
from steps import registry
from steps.errors import BUSINESS_ERRORS
from store.lifecycle import FINAL
from tests.unit.infra.support import (
    NAMES,
    NOTIFICATIONS_CONSUMER,
    RECONCILIATION,
    Synth,
    functions_by_name,
    only,
    queue_id,
)
from tests.unit.infra.test_alarms import payment_path_functions
from tests.unit.infra.test_workflow import machines

_TOKEN = re.compile(r"\u0000(\d+)\u0000")


def _flatten(value: Any, tokens: list[Any]) -> str:
    """The dashboard body's text: Fn::Join parts joined; any Ref/GetAtt replaced by a marker into `tokens`."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_flatten(part, tokens) for part in parts)
    tokens.append(value)
    return f"\u0000{len(tokens) - 1}\u0000"


def _restore(value: Any, tokens: list[Any]) -> Any:
    if isinstance(value, str):
        whole = _TOKEN.fullmatch(value)
        if whole:
            return json.dumps(tokens[int(whole.group(1))], sort_keys=True)
        return _TOKEN.sub(lambda m: json.dumps(tokens[int(m.group(1))], sort_keys=True), value)
    if isinstance(value, list):
        return [_restore(item, tokens) for item in value]
    if isinstance(value, dict):
        return {key: _restore(item, tokens) for key, item in value.items()}
    return value


@pytest.fixture(scope="module")
def dashboard(synth: Synth) -> tuple[str, dict[str, Any]]:
    _, resource = only(synth.of_type("AWS::CloudWatch::Dashboard"))
    props = resource["Properties"]
    tokens: list[Any] = []
    text = _flatten(props["DashboardBody"], tokens)
    return props["DashboardName"], _restore(json.loads(text.replace("\u0000", "\\u0000")), tokens)


def _metrics(body: dict[str, Any]) -> list[tuple[str, str, dict[str, str], str]]:
    """(namespace, name, dimensions, statistic) of every metric line of every graph."""
    found = []
    for widget in body["widgets"]:
        for line in widget["properties"].get("metrics", []):
            if isinstance(line[-1], dict) and "expression" in line[-1]:
                continue
            *fields, options = line if isinstance(line[-1], dict) else (*line, {})
            namespace, name, *pairs = fields
            found.append((namespace, name, dict(zip(pairs[::2], pairs[1::2], strict=True)), options.get("stat", "")))
    return found


def _expressions(body: dict[str, Any]) -> list[str]:
    return [line[-1]["expression"] for widget in body["widgets"] for line in widget["properties"].get("metrics", [])
            if isinstance(line[-1], dict) and "expression" in line[-1]]


def test_the_dashboard_is_named_from_the_stack_prefix(dashboard: tuple[str, dict[str, Any]]) -> None:
    name, _ = dashboard
    assert name == f"{registry.FUNCTION_NAME_PREFIX}-operations"


def test_payments_by_outcome_by_business_error_and_parked(dashboard: tuple[str, dict[str, Any]]) -> None:
    _, body = dashboard
    lines = _metrics(body)
    outcomes = {dims[names.DIMENSION_OUTCOME] for ns, name, dims, _ in lines
                if ns == names.NAMESPACE and name == names.PAYMENTS_FINISHED}
    assert outcomes == set(FINAL)
    errors = {dims[names.DIMENSION_ERROR] for ns, name, dims, _ in lines
              if ns == names.NAMESPACE and name == names.PAYMENTS_DECLINED}
    assert errors == set(BUSINESS_ERRORS)
    assert (names.NAMESPACE, names.PAYMENTS_PARKED, {}, "Sum") in lines


def test_step_latency_p50_and_p99_and_faults_for_every_registry_step(dashboard: tuple[str, dict[str, Any]]) -> None:
    """Every workflow's steps: the saga's and the operations' (on graphs of their own)."""
    _, body = dashboard
    lines = _metrics(body)
    for statistic in ("p50", "p99"):
        steps = {dims[names.DIMENSION_STEP] for ns, name, dims, stat in lines
                 if ns == names.NAMESPACE and name == names.STEP_LATENCY_MS and stat == statistic}
        assert steps == set(registry.HANDLERS), statistic
    faults = {dims[names.DIMENSION_STEP] for ns, name, dims, _ in lines
              if ns == names.NAMESPACE and name == names.STEP_FAULTS}
    assert faults == set(registry.HANDLERS)
    assert (names.NAMESPACE, names.OUTBOX_LAG_MS, {}, "p99") in lines


def test_start_latency_p50_and_p99(dashboard: tuple[str, dict[str, Any]]) -> None:
    _, body = dashboard
    api_latency = {stat for ns, name, dims, stat in _metrics(body)
                   if ns == "AWS/ApiGateway" and name == "Latency" and dims.get("Resource") == "/v1/payments"}
    assert api_latency == {"p50", "p99"}
    searches = [e for e in _expressions(body) if names.START_LATENCY_MS in e]
    assert len(searches) == 2
    assert all(f"{{{names.NAMESPACE},{names.DIMENSION_OUTCOME}}}" in e for e in searches)


def test_api_lambda_and_backends(synth: Synth, dashboard: tuple[str, dict[str, Any]]) -> None:
    _, body = dashboard
    watched = {(ns, name) for ns, name, _, _ in _metrics(body)}
    assert {("AWS/ApiGateway", "4XXError"), ("AWS/ApiGateway", "5XXError"), ("AWS/ApiGateway", "Count"),
            ("AWS/RDS", "DatabaseConnectionsCurrentlySessionPinned"), ("AWS/RDS", "DatabaseConnectionsBorrowLatency"),
            ("AWS/RDS", "ClientConnections"), ("AWS/RDS", "ACUUtilization"), ("AWS/RDS", "CPUUtilization"),
            ("AWS/ElastiCache", "EngineCPUUtilization"), ("AWS/ElastiCache", "Evictions"),
            ("AWS/SQS", "ApproximateAgeOfOldestMessage"), ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
            ("AWS/DynamoDB", "ReadThrottleEvents"), ("AWS/DynamoDB", "WriteThrottleEvents"),
            ("AWS/WAFV2", "BlockedRequests")} <= watched
    for metric in ("Errors", "Throttles"):
        functions = {dims["FunctionName"] for ns, name, dims, _ in _metrics(body)
                     if ns == "AWS/Lambda" and name == metric}
        # The payment path's, and the reconciliation's (its own row: tests/unit/infra/test_reconciliation.py).
        shown = [*payment_path_functions(synth).values(), functions_by_name(synth)[RECONCILIATION][0]]
        assert functions == {json.dumps({"Ref": logical_id}) for logical_id in shown}


def test_every_alarm_is_on_the_dashboard(synth: Synth, dashboard: tuple[str, dict[str, Any]]) -> None:
    _, body = dashboard
    (widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    shown = set(widget["properties"]["alarms"])
    # CloudWatch's alarm status widget takes at most 100 alarms (each workflow's steps add theirs).
    assert len(shown) <= 100, len(shown)
    assert shown == {json.dumps({"Fn::GetAtt": [logical_id, "Arn"]}, sort_keys=True)
                     for logical_id in synth.of_type("AWS::CloudWatch::Alarm")}


def test_notifications_consumer_errors_oldest_message_failed_deliveries_and_rule_dlqs(
        synth: Synth, dashboard: tuple[str, dict[str, Any]]) -> None:
    _, body = dashboard
    (notifications,) = [w for w in body["widgets"]
                        if w["properties"].get("title", "").startswith("Notifications: consumer")]
    lines = _metrics({"widgets": [notifications]})
    consumer = json.dumps({"Ref": functions_by_name(synth)[NOTIFICATIONS_CONSUMER][0]})
    assert ("AWS/Lambda", "Errors", {"FunctionName": consumer}, "Sum") in lines
    assert (names.NAMESPACE, names.WEBHOOK_DELIVERIES_FAILED, {}, "Sum") in lines
    queue = json.dumps({"Fn::GetAtt": [queue_id(synth, NAMES.notifications_queue), "QueueName"]})
    assert ("AWS/SQS", "ApproximateAgeOfOldestMessage", {"QueueName": queue}, "Maximum") in lines
    dlqs = {dims["QueueName"] for ns, name, dims, _ in _metrics(body)
            if ns == "AWS/SQS" and name == "ApproximateNumberOfMessagesVisible"}
    for rule in event_rules.RULES:
        assert json.dumps({"Fn::GetAtt": [queue_id(synth, NAMES.event_rule_dlq(rule)), "QueueName"]}) in dlqs, rule


def test_every_workflows_executions_started_and_timed_out(synth: Synth, dashboard: tuple[str, dict[str, Any]]) -> None:
    """The saga's row shows its machine; the operations' row each operation's (capture, cancel, refund)."""
    _, body = dashboard
    lines = _metrics(body)
    for workflow, (machine_id, _) in machines(synth).items():
        arn = json.dumps({"Ref": machine_id}, sort_keys=True)
        for metric in ("ExecutionsStarted", "ExecutionsTimedOut"):
            assert ("AWS/States", metric, {"StateMachineArn": arn}, "Sum") in lines, (workflow, metric)
