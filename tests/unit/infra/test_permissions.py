"""Least privilege: every function's role holds the calls its code makes and nothing more, all spelled out."""

from __future__ import annotations

import json
from typing import Any

from infra.functions import VPC_ACCESS_ACTIONS, XRAY_ACTIONS
from infra.permissions import (
    DYNAMODB_ITEM_ACTIONS,
    PUT_EVENTS_ACTIONS,
    QUEUE_CONSUME_ACTIONS,
    QUEUE_SEND_ACTIONS,
    START_EXECUTION_ACTIONS,
    TOPIC_KEY_ACTIONS,
    TOPIC_PUBLISH_ACTIONS,
    WORKER_SLOT_ACTIONS,
)
from steps import registry
from tests.unit.infra.support import (
    CONSOLE,
    NAMES,
    NOTIFICATIONS_CONSUMER,
    OUTBOX_RELAY,
    RECONCILIATION,
    START,
    SYNC,
    WEBHOOK_DELIVERY,
    Synth,
    actions_of,
    aws_managed_policies_of_role,
    functions_by_name,
    queue_id,
    resources_of,
    role_id_of,
    settings_default,
    statements_of_function,
)
from tests.unit.infra.test_workflow import machines

# The only actions AWS grants on "*" alone, and so the only ones allowed on it.
STAR_ONLY_ACTIONS = set(VPC_ACCESS_ACTIONS) | set(XRAY_ACTIONS)


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    return {action for s in statements for action in actions_of(s)}


def test_no_role_of_a_function_has_a_wildcard_action_a_scan_or_a_wildcard_resource_it_could_avoid(
        synth: Synth) -> None:
    functions = functions_by_name(synth, with_provider=True)
    assert len(functions) >= len(registry.HANDLERS) + 6
    for name, (_, props) in functions.items():
        statements = statements_of_function(synth, props)
        assert statements, name
        for statement in statements:
            assert statement["Effect"] == "Allow", name
            actions = actions_of(statement)
            assert not [a for a in actions if "*" in a], f"{name} has a wildcard action: {sorted(actions)}"
            if any(a.lower().startswith("dynamodb:") and "scan" in a.lower() for a in actions):
                # Only the worker-slot claim's fallback scans, and only its own small table (below).
                assert actions == set(WORKER_SLOT_ACTIONS), f"{name} may scan: {sorted(actions)}"
            if "*" in resources_of(statement):
                assert actions <= STAR_ONLY_ACTIONS, f"{name} has {sorted(actions - STAR_ONLY_ACTIONS)} on '*'"
        assert aws_managed_policies_of_role(synth, role_id_of(props)) == [], f"{name} carries an AWS managed policy"


def test_each_function_writes_to_its_own_log_group_only(synth: Synth) -> None:
    for name, (_, props) in functions_by_name(synth, with_provider=True).items():
        writes = [r for s in statements_of_function(synth, props) if "logs:PutLogEvents" in actions_of(s)
                  for r in resources_of(s)]
        assert writes == [{"Fn::GetAtt": [props["LoggingConfig"]["LogGroup"]["Ref"], "Arn"]}], name


def test_only_the_start_function_touches_dynamodb_item_by_item_and_scans_only_the_worker_slots(
        synth: Synth) -> None:
    tables = {r["Properties"]["TableName"]: logical_id
              for logical_id, r in synth.of_type("AWS::DynamoDB::Table").items()}
    idempotency = {"Fn::GetAtt": [tables[settings_default("idempotency_table")], "Arn"]}
    worker_slots = {"Fn::GetAtt": [tables[settings_default("worker_slots_table")], "Arn"]}
    for name, (_, props) in functions_by_name(synth, with_provider=True).items():
        statements = [s for s in statements_of_function(synth, props)
                      if any(a.startswith("dynamodb:") for a in actions_of(s))]
        if name != START:
            assert statements == [], name
            continue
        by_table = {json.dumps(r): actions_of(s) for s in statements for r in resources_of(s)}
        assert by_table == {json.dumps(idempotency): set(DYNAMODB_ITEM_ACTIONS),
                            json.dumps(worker_slots): set(WORKER_SLOT_ACTIONS)}
        assert set(DYNAMODB_ITEM_ACTIONS) == {
            "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"}


def test_only_the_start_sync_and_console_functions_may_start_executions(synth: Synth) -> None:
    """Of every workflow's machine: the saga's and the operations' (capture, cancel, refund), nothing else. The
    console replays (saga.replay: a new execution of the recorded workflow)."""
    machine_ids = [logical_id for logical_id, _ in machines(synth).values()]
    assert len(machine_ids) == len(registry.Workflow)
    starters = set()
    for name, (_, props) in functions_by_name(synth, with_provider=True).items():
        statements = [s for s in statements_of_function(synth, props)
                      if any(a.startswith("states:") for a in actions_of(s))]
        if statements:
            starters.add(name)
            assert _actions(statements) == set(START_EXECUTION_ACTIONS), name
            started = [r for s in statements for r in resources_of(s)]
            assert sorted(map(json.dumps, started)) == sorted(json.dumps({"Ref": i}) for i in machine_ids), name
    assert starters == {START, SYNC, CONSOLE}


def _statements_on(synth: Synth, service: str) -> dict[str, list[dict[str, Any]]]:
    """Function name -> its statements naming an action of `service` ('sqs', 'sns', ...), for the functions with any."""
    found = {}
    for name, (_, props) in functions_by_name(synth, with_provider=True).items():
        statements = [s for s in statements_of_function(synth, props)
                      if any(a.startswith(f"{service}:") for a in actions_of(s))]
        if statements:
            found[name] = statements
    return found


def test_only_notify_merchant_and_the_relay_send_to_the_queue_and_only_the_consumer_reads_it(synth: Synth) -> None:
    queue_arn = {"Fn::GetAtt": [queue_id(synth, settings_default("notifications_queue")), "Arn"]}
    senders, readers = set(), set()
    for name, statements in _statements_on(synth, "sqs").items():
        if name == RECONCILIATION:  # its own dead-letter queue only (tests/unit/infra/test_reconciliation.py)
            continue
        for statement in statements:
            assert resources_of(statement) == [queue_arn], name  # the notifications queue only, never its DLQ
            if "sqs:SendMessage" in actions_of(statement):
                senders.add(name)
                assert actions_of(statement) == set(QUEUE_SEND_ACTIONS), name
            else:
                readers.add(name)
                assert actions_of(statement) == set(QUEUE_CONSUME_ACTIONS), name
    assert senders == {registry.function_name("NotifyMerchant"), OUTBOX_RELAY}
    # The event source's poller reads with the consumer's role; the consumer's code calls SQS not at all.
    assert readers == {NOTIFICATIONS_CONSUMER}
    assert set(QUEUE_CONSUME_ACTIONS) == {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}


def test_only_the_consumer_publishes_to_the_topic_with_its_key_and_puts_events_on_the_bus(synth: Synth) -> None:
    topics = {r["Properties"]["TopicName"]: logical_id for logical_id, r in synth.of_type("AWS::SNS::Topic").items()}
    topic_id = topics[settings_default("notifications_topic")]
    (bus_id,) = [logical_id for logical_id, r in synth.of_type("AWS::Events::EventBus").items()
                 if r["Properties"]["Name"] == settings_default("event_bus")]
    key_id = synth.resources[topic_id]["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    expected = {
        "sns": (set(TOPIC_PUBLISH_ACTIONS), {"Ref": topic_id}),
        "kms": (set(TOPIC_KEY_ACTIONS), {"Fn::GetAtt": [key_id, "Arn"]}),
        "events": (set(PUT_EVENTS_ACTIONS), {"Fn::GetAtt": [bus_id, "Arn"]}),
    }
    for service, (actions, resource) in expected.items():
        statements = _statements_on(synth, service)
        # The reconciliation publishes to its own topic (tests/unit/infra/test_reconciliation.py), never this one.
        reconciliation = [r for s in statements.pop(RECONCILIATION, []) for r in resources_of(s)]
        assert resource not in reconciliation or service == "kms", service
        assert set(statements) == {NOTIFICATIONS_CONSUMER}, service
        (statement,) = statements[NOTIFICATIONS_CONSUMER]
        assert actions_of(statement) == actions, service
        assert resources_of(statement) == [resource], service
    assert NAMES.notifications_consumer_function == NOTIFICATIONS_CONSUMER


def test_the_functions_call_nothing_else(synth: Synth) -> None:
    """Every service a function's role names is one its code calls (or Lambda's VPC/X-Ray plumbing)."""
    expected = {"ec2", "xray", "logs", "secretsmanager", "dynamodb", "states", "sqs", "sns", "kms", "events", "s3",
                "firehose"}
    for name, (_, props) in functions_by_name(synth).items():
        services = {a.split(":")[0] for a in _actions(statements_of_function(synth, props))}
        assert services <= expected, f"{name} may call {sorted(services - expected)}"


def test_the_webhook_deliveries_call_nothing_on_aws_but_their_database_secret(synth: Synth) -> None:
    """They POST to the merchants' URLs (through the NAT) and write PostgreSQL: no AWS call besides the secret."""
    _, props = functions_by_name(synth)[WEBHOOK_DELIVERY]
    statements = statements_of_function(synth, props)
    assert {a.split(":")[0] for a in _actions(statements)} == {"ec2", "xray", "logs", "secretsmanager"}
    (secret,) = [s for s in statements if "secretsmanager:GetSecretValue" in actions_of(s)]
    assert actions_of(secret) == {"secretsmanager:GetSecretValue"} and len(resources_of(secret)) == 1
