"""Tables, queues, topic and bus: the shapes core/aws_resources.py provisions locally (the database and the cache:
test_database.py)."""

from __future__ import annotations

from typing import Any

from core import event_rules
from tests.unit.infra.support import (
    NAMES,
    OUTBOX_RELAY,
    START,
    Synth,
    actions_of,
    functions_by_name,
    only,
    policy_statements_of_role,
    resources_of,
    settings_default,
)


def _by_name(synth: Synth, cfn_type: str, name_property: str) -> dict[str, tuple[str, dict[str, Any]]]:
    return {r["Properties"][name_property]: (logical_id, r) for logical_id, r in synth.of_type(cfn_type).items()}


def test_dynamodb_tables_have_the_local_keys_ttl_on_demand_and_pitr(synth: Synth) -> None:
    tables = _by_name(synth, "AWS::DynamoDB::Table", "TableName")
    expected = {settings_default("idempotency_table"): ("pk", "expires_at"),
                settings_default("worker_slots_table"): ("slot", None)}
    assert set(tables) == set(expected)
    for name, (hash_key, ttl) in expected.items():
        props = tables[name][1]["Properties"]
        assert props["KeySchema"] == [{"AttributeName": hash_key, "KeyType": "HASH"}]
        assert props["AttributeDefinitions"] == [{"AttributeName": hash_key, "AttributeType": "S"}]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        if ttl is None:
            assert "TimeToLiveSpecification" not in props
        else:
            assert props["TimeToLiveSpecification"] == {"AttributeName": ttl, "Enabled": True}


def test_functions_are_told_the_deployed_table_names(synth: Synth) -> None:
    tables = _by_name(synth, "AWS::DynamoDB::Table", "TableName")
    variables = functions_by_name(synth)[START][1]["Environment"]["Variables"]
    assert variables["IDEMPOTENCY_TABLE"] == {"Ref": tables[settings_default("idempotency_table")][0]}
    assert variables["WORKER_SLOTS_TABLE"] == {"Ref": tables[settings_default("worker_slots_table")][0]}


def test_fifo_queue_redrives_to_a_fifo_dlq(synth: Synth) -> None:
    queues = _by_name(synth, "AWS::SQS::Queue", "QueueName")
    queue_name, dlq_name = settings_default("notifications_queue"), settings_default("notifications_dlq")
    # And a queue with its DLQ per rule of the event bus (tests/unit/infra/test_notifications.py).
    rule_queues = {name for rule in event_rules.RULES for name in (NAMES.event_rule_queue(rule),
                                                                    NAMES.event_rule_dlq(rule))}
    # And the reconciliation's dead-letter queue (tests/unit/infra/test_reconciliation.py).
    assert set(queues) == {queue_name, dlq_name, NAMES.reconciliation_dlq} | rule_queues
    queue, dlq = queues[queue_name][1]["Properties"], queues[dlq_name][1]
    assert queue["FifoQueue"] is True and dlq["Properties"]["FifoQueue"] is True
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [queues[dlq_name][0], "Arn"]},
                                      "maxReceiveCount": 5}
    variables = functions_by_name(synth)[START][1]["Environment"]["Variables"]
    assert variables["NOTIFICATIONS_QUEUE"] == {"Fn::GetAtt": [queues[queue_name][0], "QueueName"]}
    assert variables["NOTIFICATIONS_DLQ"] == {"Fn::GetAtt": [queues[dlq_name][0], "QueueName"]}


def test_topic_and_bus_carry_the_settings_names(synth: Synth) -> None:
    topics = _by_name(synth, "AWS::SNS::Topic", "TopicName")
    assert settings_default("notifications_topic") in topics
    _, bus = only(synth.of_type("AWS::Events::EventBus"))
    assert bus["Properties"]["Name"] == settings_default("event_bus")


def test_only_notify_merchant_and_the_outbox_relay_may_send_to_the_notifications_queue(synth: Synth) -> None:
    queues = {r["Properties"]["QueueName"]: logical_id for logical_id, r in synth.of_type("AWS::SQS::Queue").items()}
    queue_arn = {"Fn::GetAtt": [queues[settings_default("notifications_queue")], "Arn"]}
    senders = set()
    for name, (_, props) in functions_by_name(synth).items():
        statements = policy_statements_of_role(synth, props["Role"]["Fn::GetAtt"][0])
        if any("sqs:SendMessage" in actions_of(s) and queue_arn in resources_of(s) for s in statements):
            senders.add(name)
    assert senders == {"paysaga-NotifyMerchant", OUTBOX_RELAY}
