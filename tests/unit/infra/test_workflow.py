"""The Express state machine runs statemachine.asl.json itself, every `${...}` resolved to a real function ARN."""

from __future__ import annotations

import json
import re

from infra.paths import STATE_MACHINE_FILE
from steps import registry
from tests.unit.infra.support import (
    NAMES,
    START,
    Synth,
    actions_of,
    functions_by_name,
    only,
    policy_statements_of_role,
    resources_of,
    step_function_ids,
)

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def test_the_state_machine_is_express_logging_errors_without_execution_data_and_traced(synth: Synth) -> None:
    # The history of every payment is saga_executions' (the project's own table); the logs keep what failed, without
    # the payment and merchant data the states' inputs and outputs carry.
    _, machine = only(synth.of_type("AWS::StepFunctions::StateMachine"))
    props = machine["Properties"]
    assert props["StateMachineType"] == "EXPRESS"
    assert props["StateMachineName"] == NAMES.state_machine
    assert props["TracingConfiguration"] == {"Enabled": True}
    logging = props["LoggingConfiguration"]
    assert logging["Level"] == "ERROR"
    assert logging["IncludeExecutionData"] is False
    (log_group_id,) = [d["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0] for d in logging["Destinations"]]
    log_group = synth.resources[log_group_id]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert log_group["Properties"]["LogGroupName"] == NAMES.state_machine_log_group


def test_the_definition_is_the_repository_file_with_every_placeholder_substituted(synth: Synth) -> None:
    _, machine = only(synth.of_type("AWS::StepFunctions::StateMachine"))
    props = machine["Properties"]
    staged = synth.asset(props["DefinitionS3Location"]["Key"]).read_text()
    assert json.loads(staged) == json.loads(STATE_MACHINE_FILE.read_text())

    substitutions = props["DefinitionSubstitutions"]
    placeholders = set(PLACEHOLDER.findall(staged))
    assert placeholders, "the definition names its functions through placeholders"
    assert placeholders <= set(substitutions), f"unresolved: {sorted(placeholders - set(substitutions))}"
    resolved = PLACEHOLDER.sub(lambda m: json.dumps(substitutions[m.group(1)]).replace('"', "'"), staged)
    assert "${" not in resolved

    ids = step_function_ids(synth)
    for step in registry.HANDLERS:
        assert substitutions[registry.substitution_key(step)] == {"Fn::GetAtt": [ids[step], "Arn"]}
        assert f"${{{registry.substitution_key(step)}}}" in staged, f"the definition never calls {step}"


def test_the_state_machine_may_invoke_every_step_function(synth: Synth) -> None:
    _, machine = only(synth.of_type("AWS::StepFunctions::StateMachine"))
    role_id = machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]
    invokable = [r for s in policy_statements_of_role(synth, role_id) if "lambda:InvokeFunction" in actions_of(s)
                 for r in resources_of(s)]
    # Exactly the step functions, unqualified (the ARNs the definition names), and nothing else.
    expected = [{"Fn::GetAtt": [logical_id, "Arn"]} for logical_id in step_function_ids(synth).values()]
    assert sorted(map(json.dumps, invokable)) == sorted(map(json.dumps, expected))


def test_the_start_function_may_start_sync_executions(synth: Synth) -> None:
    (machine_id,) = synth.of_type("AWS::StepFunctions::StateMachine")
    _, props = functions_by_name(synth)[START]
    role_id = props["Role"]["Fn::GetAtt"][0]
    allowed = [s for s in policy_statements_of_role(synth, role_id) if "states:StartSyncExecution" in actions_of(s)]
    assert allowed and [r for s in allowed for r in resources_of(s)] == [{"Ref": machine_id}]
