"""The Express state machine runs statemachine.asl.json itself, every `${...}` resolved to a real function ARN."""

from __future__ import annotations

import json
import re

from infra.paths import STATE_MACHINE_FILE
from steps import registry
from tests.unit.infra.support import (
    START,
    Synth,
    actions_of,
    functions_by_name,
    only,
    policy_statements_of_role,
    step_function_ids,
)

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def test_the_state_machine_is_express_with_full_logging_and_tracing(synth: Synth) -> None:
    _, machine = only(synth.of_type("AWS::StepFunctions::StateMachine"))
    props = machine["Properties"]
    assert props["StateMachineType"] == "EXPRESS"
    assert props["TracingConfiguration"] == {"Enabled": True}
    logging = props["LoggingConfiguration"]
    assert logging["Level"] == "ALL"
    assert logging["IncludeExecutionData"] is True
    (log_group_id,) = [d["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0] for d in logging["Destinations"]]
    assert synth.resources[log_group_id]["Type"] == "AWS::Logs::LogGroup"


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
    invokable = json.dumps([s["Resource"] for s in policy_statements_of_role(synth, role_id)
                            if "lambda:InvokeFunction" in actions_of(s)])
    for step, logical_id in step_function_ids(synth).items():
        assert f'["{logical_id}", "Arn"]' in invokable, f"the state machine may not invoke {step}"


def test_the_start_function_may_start_sync_executions(synth: Synth) -> None:
    (machine_id,) = synth.of_type("AWS::StepFunctions::StateMachine")
    _, props = functions_by_name(synth)[START]
    role_id = props["Role"]["Fn::GetAtt"][0]
    allowed = [s for s in policy_statements_of_role(synth, role_id) if "states:StartSyncExecution" in actions_of(s)]
    assert allowed and allowed[0]["Resource"] == {"Ref": machine_id}
