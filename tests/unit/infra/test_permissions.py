"""Least privilege: every function's role holds the calls its code makes and nothing more, all spelled out."""

from __future__ import annotations

import json
from typing import Any

from infra.functions import VPC_ACCESS_ACTIONS, XRAY_ACTIONS
from infra.permissions import (
    DYNAMODB_ITEM_ACTIONS,
    QUEUE_SEND_ACTIONS,
    START_EXECUTION_ACTIONS,
    WORKER_SLOT_ACTIONS,
)
from steps import registry
from tests.unit.infra.support import (
    START,
    SYNC,
    Synth,
    actions_of,
    aws_managed_policies_of_role,
    functions_by_name,
    only,
    resources_of,
    role_id_of,
    settings_default,
    statements_of_function,
)

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


def test_only_the_start_and_sync_functions_may_start_executions(synth: Synth) -> None:
    machine_id, _ = only(synth.of_type("AWS::StepFunctions::StateMachine"))
    starters = set()
    for name, (_, props) in functions_by_name(synth, with_provider=True).items():
        statements = [s for s in statements_of_function(synth, props)
                      if any(a.startswith("states:") for a in actions_of(s))]
        if statements:
            starters.add(name)
            assert _actions(statements) == set(START_EXECUTION_ACTIONS), name
            assert [r for s in statements for r in resources_of(s)] == [{"Ref": machine_id}], name
    assert starters == {START, SYNC}


def test_only_notify_merchant_touches_sqs_and_only_to_send(synth: Synth) -> None:
    queues = {r["Properties"]["QueueName"]: logical_id for logical_id, r in synth.of_type("AWS::SQS::Queue").items()}
    queue_arn = {"Fn::GetAtt": [queues[settings_default("notifications_queue")], "Arn"]}
    senders = set()
    for name, (_, props) in functions_by_name(synth, with_provider=True).items():
        statements = [s for s in statements_of_function(synth, props)
                      if any(a.startswith("sqs:") for a in actions_of(s))]
        if statements:
            senders.add(name)
            assert _actions(statements) == set(QUEUE_SEND_ACTIONS), name
            assert [r for s in statements for r in resources_of(s)] == [queue_arn], name
    assert senders == {registry.function_name("NotifyMerchant")}


def test_the_functions_call_nothing_else(synth: Synth) -> None:
    """Every service a function's role names is one its code calls (or Lambda's VPC/X-Ray plumbing)."""
    expected = {"ec2", "xray", "logs", "secretsmanager", "dynamodb", "states", "sqs"}
    for name, (_, props) in functions_by_name(synth).items():
        services = {a.split(":")[0] for a in _actions(statements_of_function(synth, props))}
        assert services <= expected, f"{name} may call {sorted(services - expected)}"
