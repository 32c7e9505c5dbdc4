"""The alarms: each on the metric the runtime or the AWS service really publishes (namespace, name, every dimension),
none on a business outcome, all sent to one KMS-encrypted topic."""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from core import event_rules, limits, telemetry_names
from infra.alarms import (
    API_4XX_RATE_PERCENT,
    API_5XX_RATE_PERCENT,
    NOTIFICATION_AGE_S,
    REFUND_REFUSED_MESSAGE,
    START_LATENCY_P99_MS,
    SYNC_GAVE_UP_MESSAGE,
)
from infra.messaging import DEAD_LETTER_AFTER_S
from saga import sync, webhooks
from steps import registry
from steps.errors import BUSINESS_ERRORS, ServiceUnavailable
from tests.unit.infra.support import (
    CONSOLE_FUNCTIONS,
    NAMES,
    NOTIFICATION_FUNCTIONS,
    START,
    SYNC,
    WEBHOOKS,
    Synth,
    functions_by_name,
    only,
    queue_id,
    step_function_ids,
)
from tests.unit.infra.test_workflow import machines


@dataclass(frozen=True)
class MetricRead:
    """One metric an alarm reads."""

    namespace: str
    name: str
    dimensions: dict[str, str]  # name -> the value's JSON (a Ref, a GetAtt, a Join, or a literal)
    statistic: str


@dataclass(frozen=True)
class AlarmOn:
    logical_id: str
    props: dict[str, Any]
    metrics: list[MetricRead]
    expression: str  # "" for an alarm on one metric

    def reads(self, namespace: str, name: str, **dimensions: Any) -> bool:
        wanted = {key: _text(value) for key, value in dimensions.items()}
        return any(m.namespace == namespace and m.name == name and m.dimensions == wanted for m in self.metrics)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _dimensions(raw: list[dict[str, Any]] | None) -> dict[str, str]:
    return {d["Name"]: _text(d["Value"]) for d in raw or []}


def _alarm(logical_id: str, props: dict[str, Any]) -> AlarmOn:
    if "MetricName" in props:  # one metric, written inline
        statistic = props.get("Statistic") or props["ExtendedStatistic"]
        return AlarmOn(logical_id, props, [MetricRead(props["Namespace"], props["MetricName"],
                                                   _dimensions(props.get("Dimensions")), statistic)], "")
    watched, expression = [], ""
    for query in props["Metrics"]:
        if "Expression" in query:
            expression = query["Expression"]
            continue
        stat = query["MetricStat"]
        metric = stat["Metric"]
        watched.append(MetricRead(metric["Namespace"], metric["MetricName"], _dimensions(metric.get("Dimensions")),
                               stat["Stat"]))
    return AlarmOn(logical_id, props, watched, expression)


@pytest.fixture(scope="module")
def alarms(synth: Synth) -> list[AlarmOn]:
    return [_alarm(logical_id, r["Properties"]) for logical_id, r in synth.of_type("AWS::CloudWatch::Alarm").items()]


def _reading(alarms: list[AlarmOn], namespace: str, name: str, **dimensions: Any) -> AlarmOn:
    (alarm,) = [a for a in alarms if a.reads(namespace, name, **dimensions)]
    return alarm


def _ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def _never(alarm: AlarmOn) -> None:
    """An alarm on the first occurrence."""
    assert alarm.props["Threshold"] == 0 and alarm.props["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm.props["EvaluationPeriods"] == 1


# ---- Nothing on business outcomes -------------------------------------------------------------------------------


def test_no_alarm_watches_failed_executions_or_declines(alarms: list[AlarmOn]) -> None:
    """Every decline ends the saga in a Fail state: ExecutionsFailed counts business outcomes, not incidents."""
    watched = [(m.namespace, m.name) for a in alarms for m in a.metrics]
    assert ("AWS/States", "ExecutionsFailed") not in watched
    declines = [m.dimensions for a in alarms for m in a.metrics if m.name == telemetry_names.PAYMENTS_DECLINED]
    # The one decline alarmed on is ours: our backends stayed down through every retry.
    assert declines == [{telemetry_names.DIMENSION_ERROR: ServiceUnavailable.__name__}]
    assert ServiceUnavailable.__name__ in BUSINESS_ERRORS


def _operation_steps(*roles: registry.Role) -> list[str]:
    return [step for step, entry in registry.OPERATION_STEPS.items() if entry.role in roles]


def test_forward_steps_alarm_on_their_fault_rate_not_on_lambda_errors(synth: Synth, alarms: list[AlarmOn]) -> None:
    """A forward step raises a decline as a Lambda error: its Errors move with the decline rate. StepFaults do not.
    The operations' forward steps (a refused capture or refund is theirs to raise) the same."""
    ids = step_function_ids(synth)
    steps = [*registry.with_role(registry.Role.FORWARD), *_operation_steps(registry.Role.FORWARD)]
    assert {"CaptureAuthorization", "RefundAtGateway"} <= set(steps)
    for step in steps:
        function = _ref(ids[step])
        assert not [a for a in alarms if a.reads("AWS/Lambda", "Errors", FunctionName=function)], step
        alarm = _reading(alarms, telemetry_names.NAMESPACE, telemetry_names.STEP_FAULTS,
                         **{telemetry_names.DIMENSION_STEP: step})
        assert alarm.reads("AWS/Lambda", "Invocations", FunctionName=function)
        assert "faults" in alarm.expression and "/ invocations" in alarm.expression


def test_compensations_and_recovery_alarm_on_their_first_error(synth: Synth, alarms: list[AlarmOn]) -> None:
    """ParkPayment is RECOVERY, not a forward step: its first error is a payment that could not even be parked. The
    operations' FailOperation and ParkOperation the same."""
    ids = step_function_ids(synth)
    roles = (registry.Role.COMPENSATION, registry.Role.RECOVERY)
    steps = [*registry.with_role(*roles), *_operation_steps(*roles)]
    assert {"ParkPayment", "FailOperation", "ParkOperation"} <= set(steps)
    for step in steps:
        _never(_reading(alarms, "AWS/Lambda", "Errors", FunctionName=_ref(ids[step])))


def test_the_functions_that_answer_for_themselves_alarm_on_any_error(synth: Synth, alarms: list[AlarmOn]) -> None:
    """The notifications' three too: a consumer's record that fails alone is reported back, not a Lambda error. The
    console's function and its authorizer too (a refused login or session is an answer, not an error)."""
    functions = functions_by_name(synth)
    for name in (START, WEBHOOKS, SYNC, *sorted(NOTIFICATION_FUNCTIONS), *sorted(CONSOLE_FUNCTIONS)):
        _never(_reading(alarms, "AWS/Lambda", "Errors", FunctionName=_ref(functions[name][0])))


# ---- Payments -------------------------------------------------------------------------------------------------------


def test_a_parked_payment_raises_an_alarm(alarms: list[AlarmOn]) -> None:
    _never(_reading(alarms, telemetry_names.NAMESPACE, telemetry_names.PAYMENTS_PARKED))


def test_a_timed_out_execution_of_any_workflow_raises_an_alarm(synth: Synth, alarms: list[AlarmOn]) -> None:
    """The saga's, and each operation's (capture, cancel, refund): watched the same way."""
    found = machines(synth)
    assert len(found) == len(registry.Workflow)
    for machine_id, _ in found.values():
        _never(_reading(alarms, "AWS/States", "ExecutionsTimedOut", StateMachineArn=_ref(machine_id)))


@pytest.mark.parametrize(("metric", "message", "source"), [
    ("PaymentsLeftParked", SYNC_GAVE_UP_MESSAGE, sync),
    ("RefundsRefused", REFUND_REFUSED_MESSAGE, webhooks),
])
def test_a_logged_line_an_engineer_must_act_on_raises_an_alarm(synth: Synth, alarms: list[AlarmOn], metric: str,
                                                               message: str, source: ModuleType) -> None:
    assert f'"{message}"' in inspect.getsource(source), "the filter must match the line the runtime logs"
    patterns = [r["Properties"]["FilterPattern"] for r in synth.of_type("AWS::Logs::MetricFilter").values()]
    assert any(message in pattern for pattern in patterns), patterns
    _never(_reading(alarms, telemetry_names.NAMESPACE, metric))


# ---- Functions and the API --------------------------------------------------------------------------------------


def payment_path_functions(synth: Synth) -> dict[str, str]:
    """Function name -> logical id of every function a payment runs through (deploy-time ones aside)."""
    functions = functions_by_name(synth)
    names = [START, WEBHOOKS, SYNC, *(registry.function_name(step) for step in registry.HANDLERS),
             *sorted(NOTIFICATION_FUNCTIONS)]
    return {name: functions[name][0] for name in names}


def test_every_payment_path_function_alarms_on_its_first_throttle(synth: Synth, alarms: list[AlarmOn]) -> None:
    for logical_id in payment_path_functions(synth).values():
        _never(_reading(alarms, "AWS/Lambda", "Throttles", FunctionName=_ref(logical_id)))


def _stage(synth: Synth) -> tuple[str, dict[str, Any]]:
    _, api = only(synth.of_type("AWS::ApiGateway::RestApi"))
    stage_id, _ = only(synth.of_type("AWS::ApiGateway::Stage"))
    return api["Properties"]["Name"], _ref(stage_id)


def test_start_latency_p99_below_the_integration_timeout(synth: Synth, alarms: list[AlarmOn]) -> None:
    api_name, stage = _stage(synth)
    alarm = _reading(alarms, "AWS/ApiGateway", "Latency", ApiName=api_name, Stage=stage, Resource="/v1/payments",
                     Method="POST")
    assert alarm.metrics[0].statistic == "p99"
    assert alarm.props["Threshold"] == START_LATENCY_P99_MS < limits.API_INTEGRATION_TIMEOUT_MS


@pytest.mark.parametrize(("status", "threshold"), [("4XX", API_4XX_RATE_PERCENT), ("5XX", API_5XX_RATE_PERCENT)])
def test_api_error_rates_are_errors_over_requests(synth: Synth, alarms: list[AlarmOn], status: str,
                                                  threshold: int) -> None:
    api_name, stage = _stage(synth)
    alarm = _reading(alarms, "AWS/ApiGateway", f"{status}Error", ApiName=api_name, Stage=stage)
    assert alarm.reads("AWS/ApiGateway", "Count", ApiName=api_name, Stage=stage)
    assert "100 *" in alarm.expression and "/ requests" in alarm.expression
    assert alarm.props["Threshold"] == threshold


# ---- What the saga runs on --------------------------------------------------------------------------------------


def test_rds_proxy_pinning_and_borrow_latency(synth: Synth, alarms: list[AlarmOn]) -> None:
    proxy_id, _ = only(synth.of_type("AWS::RDS::DBProxy"))
    _never(_reading(alarms, "AWS/RDS", "DatabaseConnectionsCurrentlySessionPinned", ProxyName=_ref(proxy_id)))
    _reading(alarms, "AWS/RDS", "DatabaseConnectionsBorrowLatency", ProxyName=_ref(proxy_id))


def test_aurora_acu_utilization_and_cpu(synth: Synth, alarms: list[AlarmOn]) -> None:
    cluster_id, _ = only(synth.of_type("AWS::RDS::DBCluster"))
    for metric in ("ACUUtilization", "CPUUtilization"):
        alarm = _reading(alarms, "AWS/RDS", metric, DBClusterIdentifier=_ref(cluster_id))
        assert 0 < alarm.props["Threshold"] < 100


def test_redis_cpu_and_evictions_on_every_node(synth: Synth, alarms: list[AlarmOn]) -> None:
    """ElastiCache publishes per node (CacheClusterId `<replication group id>-00N`), never per replication group."""
    group_id, group = only(synth.of_type("AWS::ElastiCache::ReplicationGroup"))
    nodes = group["Properties"]["NumCacheClusters"]
    for index in range(1, nodes + 1):
        node = {"Fn::Join": ["", [_ref(group_id), f"-{index:03d}"]]}
        _reading(alarms, "AWS/ElastiCache", "EngineCPUUtilization", CacheClusterId=node)
        _never(_reading(alarms, "AWS/ElastiCache", "Evictions", CacheClusterId=node))
    watched = [m for a in alarms for m in a.metrics if m.namespace == "AWS/ElastiCache"]
    assert len(watched) == 2 * nodes


def test_every_table_alarms_on_throttled_reads_and_writes(synth: Synth, alarms: list[AlarmOn]) -> None:
    tables = synth.of_type("AWS::DynamoDB::Table")
    assert tables
    for table_id in tables:
        alarm = _reading(alarms, "AWS/DynamoDB", "ReadThrottleEvents", TableName=_ref(table_id))
        assert alarm.reads("AWS/DynamoDB", "WriteThrottleEvents", TableName=_ref(table_id))
        assert alarm.props["Threshold"] == 0


def test_notifications_oldest_message_and_dead_letters(synth: Synth, alarms: list[AlarmOn]) -> None:
    queue = {"Fn::GetAtt": [queue_id(synth, NAMES.notifications_queue), "QueueName"]}
    dlq = {"Fn::GetAtt": [queue_id(synth, NAMES.notifications_dlq), "QueueName"]}
    oldest = _reading(alarms, "AWS/SQS", "ApproximateAgeOfOldestMessage", QueueName=queue)
    assert oldest.props["Threshold"] == NOTIFICATION_AGE_S
    # A poison message is dead-lettered (DlqNotEmpty) before it is old enough for the age alarm, which then means
    # that no consumer takes the queue at all.
    assert NOTIFICATION_AGE_S > DEAD_LETTER_AFTER_S
    (queue_props,) = [r["Properties"] for r in synth.of_type("AWS::SQS::Queue").values()
                      if r["Properties"].get("QueueName") == NAMES.notifications_queue]
    receives, visibility_s = queue_props["RedrivePolicy"]["maxReceiveCount"], queue_props["VisibilityTimeout"]
    assert receives * visibility_s == DEAD_LETTER_AFTER_S
    _never(_reading(alarms, "AWS/SQS", "ApproximateNumberOfMessagesVisible", QueueName=dlq))


def test_a_failed_webhook_delivery_raises_an_alarm(alarms: list[AlarmOn]) -> None:
    alarm = _reading(alarms, telemetry_names.NAMESPACE, telemetry_names.WEBHOOK_DELIVERIES_FAILED)
    _never(alarm)
    assert alarm.metrics[0].statistic == "Sum" and alarm.metrics[0].dimensions == {}


def test_every_event_rule_dead_letter_queue_alarms_on_its_first_message(synth: Synth, alarms: list[AlarmOn]) -> None:
    for rule in event_rules.RULES:
        dlq = {"Fn::GetAtt": [queue_id(synth, NAMES.event_rule_dlq(rule)), "QueueName"]}
        _never(_reading(alarms, "AWS/SQS", "ApproximateNumberOfMessagesVisible", QueueName=dlq))


# ---- Where they go ----------------------------------------------------------------------------------------------


def test_every_alarm_notifies_the_encrypted_alarm_topic(synth: Synth, alarms: list[AlarmOn]) -> None:
    topics = {r["Properties"]["TopicName"]: (logical_id, r["Properties"])
              for logical_id, r in synth.of_type("AWS::SNS::Topic").items()}
    topic_id, topic = topics[f"{registry.FUNCTION_NAME_PREFIX}-alarms"]
    for alarm in alarms:
        assert alarm.props["AlarmActions"] == [_ref(topic_id)], alarm.logical_id
        assert alarm.props["OKActions"] == [_ref(topic_id)], alarm.logical_id
        assert alarm.props["TreatMissingData"] == "notBreaching", alarm.logical_id

    # A customer managed key (alias/aws/sns cannot let CloudWatch publish), which CloudWatch may use.
    key_ref = topic["KmsMasterKeyId"]
    key_id = key_ref["Fn::GetAtt"][0]
    key = synth.resources[key_id]
    assert key["Type"] == "AWS::KMS::Key" and key["Properties"]["EnableKeyRotation"] is True
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    assert any(s["Effect"] == "Allow" and s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
               and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(s["Action"]) for s in statements)
