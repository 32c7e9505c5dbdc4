"""Notifications on AWS (issue 14): the queue's consumer behind an event source with partial batch failures, the
outbox relay and the merchant webhook deliveries on schedules, and the event bus's rules, each delivering to an
encrypted queue with a DLQ, on exactly the patterns the runtime's core/event_rules.py writes."""

from __future__ import annotations

import json
from typing import Any

from core import event_rules, limits
from infra.messaging import CONSUMER_TIMEOUT_S, MAX_RECEIVE_COUNT, VISIBILITY_TIMEOUT_S
from infra.notifications import CONSUMER_BATCH_SIZE, CONSUMER_CONCURRENCY
from tests.unit.infra.support import (
    NAMES,
    NOTIFICATIONS_CONSUMER,
    OUTBOX_RELAY,
    WEBHOOK_DELIVERY,
    Synth,
    functions_by_name,
    join_text,
    only,
    queue_id,
)


def _queue(synth: Synth, name: str) -> dict[str, Any]:
    return dict(synth.resources[queue_id(synth, name)]["Properties"])


def test_the_consumer_reads_the_queue_through_an_event_source_with_partial_batch_failures(synth: Synth) -> None:
    function_id, props = functions_by_name(synth)[NOTIFICATIONS_CONSUMER]
    assert props["Handler"] == "saga.notifications.consumer.handler"
    assert props["Timeout"] == CONSUMER_TIMEOUT_S == limits.NOTIFICATIONS_CONSUMER_TIMEOUT_S
    _, mapping = only(synth.of_type("AWS::Lambda::EventSourceMapping"))
    source = mapping["Properties"]
    assert source["FunctionName"] == {"Ref": function_id}
    assert source["EventSourceArn"] == {"Fn::GetAtt": [queue_id(synth, NAMES.notifications_queue), "Arn"]}
    assert source["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # A FIFO queue: at most 10 a batch, and no batching window (Lambda refuses one on a FIFO source).
    assert source["BatchSize"] == CONSUMER_BATCH_SIZE == 10
    assert "MaximumBatchingWindowInSeconds" not in source
    # The poller never invokes past the reservation: no throttled batch handed back to the queue.
    concurrency = source["ScalingConfig"]["MaximumConcurrency"]
    assert concurrency == props["ReservedConcurrentExecutions"] == CONSUMER_CONCURRENCY >= 2


def test_the_queues_visibility_timeout_is_six_times_the_consumers_timeout(synth: Synth) -> None:
    """AWS's guidance for a queue a Lambda event source reads; the receives before the DLQ stay the runtime's."""
    queue = _queue(synth, NAMES.notifications_queue)
    _, consumer = functions_by_name(synth)[NOTIFICATIONS_CONSUMER]
    assert queue["VisibilityTimeout"] == VISIBILITY_TIMEOUT_S >= 6 * consumer["Timeout"]
    assert queue["VisibilityTimeout"] >= limits.NOTIFICATIONS_VISIBILITY_TIMEOUT_S
    assert queue["RedrivePolicy"]["maxReceiveCount"] == MAX_RECEIVE_COUNT == limits.NOTIFICATIONS_MAX_RECEIVES
    assert queue["FifoQueue"] is True


def _schedule_of(synth: Synth, function_id: str) -> dict[str, Any]:
    (rule,) = [r["Properties"] for r in synth.of_type("AWS::Events::Rule").values()
               if any(t["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]} for t in r["Properties"].get("Targets", []))]
    return dict(rule)


def test_the_relay_and_the_webhook_deliveries_run_every_minute_and_a_failed_run_waits_for_the_next(
        synth: Synth) -> None:
    by_name = functions_by_name(synth)
    for name, handler, interval_ms in (
            (OUTBOX_RELAY, "saga.notifications.relay.handler", limits.OUTBOX_RELAY_INTERVAL_MS),
            (WEBHOOK_DELIVERY, "saga.notifications.webhooks.handler", limits.WEBHOOK_DELIVERY_INTERVAL_MS)):
        function_id, props = by_name[name]
        assert props["Handler"] == handler, name
        rule = _schedule_of(synth, function_id)
        assert interval_ms == 60_000
        assert rule["ScheduleExpression"] == "rate(1 minute)", name
        assert "EventBusName" not in rule, name  # the default bus: schedules
        (target,) = rule["Targets"]
        assert target["RetryPolicy"] == {"MaximumRetryAttempts": 0}, name
        # Overlapping runs (a run outlasting the interval) each have room: no tick is throttled.
        overlapping = -(-props["Timeout"] * 1_000 // interval_ms)
        assert props["ReservedConcurrentExecutions"] >= overlapping, name
    assert by_name[WEBHOOK_DELIVERY][1]["Timeout"] == limits.WEBHOOK_FUNCTION_TIMEOUT_S
    assert by_name[OUTBOX_RELAY][1]["Timeout"] * 1_000 < limits.OUTBOX_RELAY_INTERVAL_MS


def test_the_webhook_deliveries_never_allow_loopback_and_reach_the_internet_from_the_vpc(synth: Synth) -> None:
    _, props = functions_by_name(synth)[WEBHOOK_DELIVERY]
    assert props["Environment"]["Variables"]["WEBHOOKS_ALLOW_LOOPBACK"] == "false"
    assert props["VpcConfig"]["SubnetIds"]
    assert len(synth.of_type("AWS::EC2::NatGateway")) >= 1


def test_every_rule_of_the_runtime_is_on_the_bus_with_its_pattern_verbatim(synth: Synth) -> None:
    (bus_id,) = [logical_id for logical_id, r in synth.of_type("AWS::Events::EventBus").items()
                 if r["Properties"]["Name"] == NAMES.event_bus]
    on_bus = {r["Properties"]["Name"]: r["Properties"] for r in synth.of_type("AWS::Events::Rule").values()
              if r["Properties"].get("EventBusName") == {"Ref": bus_id}}
    assert set(on_bus) == {NAMES.event_rule(rule) for rule in event_rules.RULES}
    for rule, pattern in event_rules.RULES.items():
        # JSON both sides: True stays true, the numeric matcher stays a list.
        assert json.dumps(on_bus[NAMES.event_rule(rule)]["EventPattern"], sort_keys=True) == json.dumps(
            pattern, sort_keys=True), rule


def test_each_rule_delivers_to_a_kms_encrypted_queue_of_its_own_with_a_dlq_and_only_for_itself(
        synth: Synth) -> None:
    rules = {r["Properties"]["Name"]: r["Properties"] for r in synth.of_type("AWS::Events::Rule").values()
             if "Name" in r["Properties"]}
    key_policies = [r["Properties"]["KeyPolicy"]["Statement"] for r in synth.of_type("AWS::KMS::Key").values()]
    for rule in event_rules.RULES:
        queue_logical_id = queue_id(synth, NAMES.event_rule_queue(rule))
        dlq_logical_id = queue_id(synth, NAMES.event_rule_dlq(rule))
        queue, dlq = _queue(synth, NAMES.event_rule_queue(rule)), _queue(synth, NAMES.event_rule_dlq(rule))
        (target,) = rules[NAMES.event_rule(rule)]["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": [queue_logical_id, "Arn"]}, rule
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq_logical_id, "Arn"]}}, rule
        assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [dlq_logical_id, "Arn"]}, rule
        key = queue["KmsMasterKeyId"]
        assert key == dlq["KmsMasterKeyId"] and "Fn::GetAtt" in key, rule  # the stack's messages key
        rule_arn_suffix = f":rule/{NAMES.event_bus}/{NAMES.event_rule(rule)}"
        # EventBridge may send to both queues, and use the key, for this rule only.
        for logical_id in (queue_logical_id, dlq_logical_id):
            allows = [s for r in synth.of_type("AWS::SQS::QueuePolicy").values()
                      if {"Ref": logical_id} in r["Properties"]["Queues"]
                      for s in r["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
            assert [s["Action"] for s in allows] == ["sqs:SendMessage"], rule
            assert allows[0]["Principal"] == {"Service": "events.amazonaws.com"}
            assert join_text(allows[0]["Condition"]["ArnEquals"]["aws:SourceArn"]).endswith(rule_arn_suffix), rule
        key_uses = [s for statements in key_policies for s in statements
                    if s.get("Principal") == {"Service": "events.amazonaws.com"}
                    and rule_arn_suffix in json.dumps(s.get("Condition", {}))]
        assert len(key_uses) == 1 and set(key_uses[0]["Action"]) == {"kms:GenerateDataKey", "kms:Decrypt"}, rule
    # EventBridge uses the key for the rules only: no unconditioned grant.
    assert all("Condition" in s for statements in key_policies for s in statements
               if s.get("Principal") == {"Service": "events.amazonaws.com"})


def test_the_handlers_are_in_the_code_asset(synth: Synth) -> None:
    by_name = functions_by_name(synth)
    for name in (NOTIFICATIONS_CONSUMER, OUTBOX_RELAY, WEBHOOK_DELIVERY):
        props = by_name[name][1]
        module, _, function = props["Handler"].rpartition(".")
        source = synth.asset(props["Code"]["S3Key"]) / (module.replace(".", "/") + ".py")
        assert source.is_file(), name
        assert f"def {function}(" in source.read_text(), name
