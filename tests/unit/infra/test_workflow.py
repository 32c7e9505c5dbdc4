"""One Express state machine per workflow (steps.registry.DEFINITION_FILES): each runs its repository file itself,
every `${...}` resolved to a real function ARN, and its role may invoke exactly the functions its file names."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from infra.environment import STATE_MACHINE_ARN_VARIABLES
from infra.paths import STATE_MACHINE_FILE, definition_file
from infra.workflow import invoked_steps
from steps import registry
from steps.registry import Workflow
from tests.unit.infra.support import (
    NAMES,
    START,
    SYNC,
    WEBHOOKS,
    Synth,
    actions_of,
    functions_by_name,
    policy_statements_of_role,
    resources_of,
    settings_env_names,
    step_function_ids,
)

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


def machines(synth: Synth) -> dict[Workflow, tuple[str, dict[str, Any]]]:
    """Workflow -> (logical id, properties) of its state machine, found by its name."""
    by_name = {r["Properties"]["StateMachineName"]: (logical_id, r["Properties"])
               for logical_id, r in synth.of_type("AWS::StepFunctions::StateMachine").items()}
    return {workflow: by_name[NAMES.workflow_state_machine(workflow)] for workflow in Workflow}


def _placeholders(workflow: Workflow) -> set[str]:
    return set(PLACEHOLDER.findall(definition_file(workflow).read_text()))


def test_one_state_machine_per_workflow_and_the_sagas_keeps_its_name(synth: Synth) -> None:
    assert len(synth.of_type("AWS::StepFunctions::StateMachine")) == len(Workflow) == 4
    assert set(machines(synth)) == set(Workflow)
    assert NAMES.workflow_state_machine(Workflow.PAYMENT) == NAMES.state_machine == "paysaga-payment-saga"
    assert definition_file(Workflow.PAYMENT) == STATE_MACHINE_FILE
    # The saga's construct path is the one it always had: its logical id, and so the deployed machine, stay.
    logical_id, _ = machines(synth)[Workflow.PAYMENT]
    assert logical_id.startswith("SagaStateMachine")


@pytest.mark.parametrize("workflow", list(Workflow))
def test_each_machine_is_express_logging_every_state_without_execution_data_and_traced(synth: Synth,
                                                                                       workflow: Workflow) -> None:
    # The console's timeline on AWS: every state entered and exited (level ALL), without the payment and merchant
    # data the states carry unless the deployment asks for it (context workflow_log_execution_data).
    _, props = machines(synth)[workflow]
    assert props["StateMachineType"] == "EXPRESS"
    assert props["TracingConfiguration"] == {"Enabled": True}
    logging = props["LoggingConfiguration"]
    assert logging["Level"] == "ALL"
    assert logging["IncludeExecutionData"] is False
    (log_group_id,) = [d["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0] for d in logging["Destinations"]]
    log_group = synth.resources[log_group_id]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert log_group["Properties"]["LogGroupName"] == NAMES.workflow_log_group(workflow)
    assert log_group["Properties"]["LogGroupName"].startswith("/aws/vendedlogs/states/")


@pytest.mark.parametrize("workflow", list(Workflow))
def test_each_definition_is_its_repository_file_with_every_placeholder_substituted(synth: Synth,
                                                                                  workflow: Workflow) -> None:
    _, props = machines(synth)[workflow]
    staged = synth.asset(props["DefinitionS3Location"]["Key"]).read_text()
    assert json.loads(staged) == json.loads(definition_file(workflow).read_text())

    substitutions = props["DefinitionSubstitutions"]
    placeholders = set(PLACEHOLDER.findall(staged))
    assert placeholders, "the definition names its functions through placeholders"
    # Exactly its own placeholders: no other workflow's function leaks into its substitutions.
    assert placeholders == set(substitutions), f"unresolved: {sorted(placeholders - set(substitutions))}"
    resolved = PLACEHOLDER.sub(lambda m: json.dumps(substitutions[m.group(1)]).replace('"', "'"), staged)
    assert "${" not in resolved

    ids = step_function_ids(synth)
    for placeholder in placeholders:
        step = registry.step_of_substitution(f"${{{placeholder}}}")
        assert substitutions[placeholder] == {"Fn::GetAtt": [ids[step], "Arn"]}, placeholder


@pytest.mark.parametrize("workflow", list(Workflow))
def test_each_machine_may_invoke_exactly_the_functions_its_file_names(synth: Synth, workflow: Workflow) -> None:
    _, props = machines(synth)[workflow]
    role_id = props["RoleArn"]["Fn::GetAtt"][0]
    invokable = [r for s in policy_statements_of_role(synth, role_id) if "lambda:InvokeFunction" in actions_of(s)
                 for r in resources_of(s)]
    # Unqualified (the ARNs the definition names), each of its file's functions once, and nothing else.
    ids = step_function_ids(synth)
    named = {registry.step_of_substitution(f"${{{p}}}") for p in _placeholders(workflow)}
    expected = [{"Fn::GetAtt": [ids[step], "Arn"]} for step in named]
    assert sorted(map(json.dumps, invokable)) == sorted(map(json.dumps, expected))
    assert set(invoked_steps(definition_file(workflow).read_text())) == named


def test_every_registry_step_is_invoked_by_some_workflow_and_the_saga_by_its_own_steps_only() -> None:
    invoked = {workflow: set(invoked_steps(definition_file(workflow).read_text())) for workflow in Workflow}
    assert set().union(*invoked.values()) == set(registry.HANDLERS)
    assert invoked[Workflow.PAYMENT] == set(registry.STEPS)
    assert set().union(*(invoked[w] for w in registry.OPERATIONS)) == set(registry.OPERATION_STEPS)


def test_a_placeholder_naming_no_registered_step_is_refused() -> None:
    with pytest.raises(KeyError, match="NoSuchStep"):
        invoked_steps('{"FunctionName": "${NoSuchStepFunctionArn}"}')


def test_the_start_and_sync_functions_know_every_machine_and_may_start_it(synth: Synth) -> None:
    found = machines(synth)
    assert set(STATE_MACHINE_ARN_VARIABLES.values()) <= settings_env_names()
    functions = functions_by_name(synth)
    for name in (START, SYNC):
        _, props = functions[name]
        variables = props["Environment"]["Variables"]
        for workflow, variable in STATE_MACHINE_ARN_VARIABLES.items():
            assert variables[variable] == {"Ref": found[workflow][0]}, (name, variable)
        allowed = [s for s in policy_statements_of_role(synth, props["Role"]["Fn::GetAtt"][0])
                   if "states:StartSyncExecution" in actions_of(s)]
        resources = [r for s in allowed for r in resources_of(s)]
        assert sorted(map(json.dumps, resources)) == sorted(json.dumps({"Ref": logical_id})
                                                            for logical_id, _ in found.values()), name
    # The webhook function runs saga.handler (whose services name the saga's machine) but starts no operation.
    webhook_variables = functions[WEBHOOKS][1]["Environment"]["Variables"]
    assert webhook_variables[STATE_MACHINE_ARN_VARIABLES[Workflow.PAYMENT]] == {"Ref": found[Workflow.PAYMENT][0]}
    assert not {STATE_MACHINE_ARN_VARIABLES[w] for w in registry.OPERATIONS} & set(webhook_variables)
