"""The synthesized template against core/limits.py and the state machines it deploys (the payment saga's and the
operations'): each function outlives the Tasks that invoke it, the start function outlives any execution it waits
for, and the environment carries the limits' values."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from core import limits
from steps import registry
from steps.registry import Workflow
from tests.unit.infra.support import START, Synth, functions_by_name
from tests.unit.infra.test_workflow import machines

PLACEHOLDER = re.compile(r"^\$\{([A-Za-z0-9_]+)\}$")


@pytest.fixture(scope="module")
def deployed(synth: Synth) -> dict[Workflow, dict[str, Any]]:
    """Each workflow's state machine properties, with the definition as deployed (the staged asset) under
    'Definition'."""
    found = {}
    for workflow, (_, resource_props) in machines(synth).items():
        props = dict(resource_props)
        props["Definition"] = json.loads(synth.asset(props["DefinitionS3Location"]["Key"]).read_text())
        found[workflow] = props
    return found


@pytest.fixture(scope="module")
def machine(deployed: dict[Workflow, dict[str, Any]]) -> dict[str, Any]:
    """The payment saga's."""
    return deployed[Workflow.PAYMENT]


def _variables(synth: Synth, name: str) -> dict[str, Any]:
    return dict(functions_by_name(synth)[name][1]["Environment"]["Variables"])


def test_every_function_outlives_the_tasks_that_invoke_it(synth: Synth,
                                                          deployed: dict[Workflow, dict[str, Any]]) -> None:
    timeout_by_id = {logical_id: props["Timeout"] for logical_id, props in functions_by_name(synth).values()}
    invoked = set()
    for workflow, machine in deployed.items():
        substitutions = machine["DefinitionSubstitutions"]
        for name, state in machine["Definition"]["States"].items():
            if state["Type"] != "Task":
                continue
            placeholder = PLACEHOLDER.match(state["Parameters"]["FunctionName"])
            assert placeholder, f"{workflow}: {name} names its function through a placeholder"
            (function_id, attribute) = substitutions[placeholder.group(1)]["Fn::GetAtt"]
            assert attribute == "Arn"
            invoked.add(function_id)
            assert timeout_by_id[function_id] >= state["TimeoutSeconds"], (
                f"{workflow}: {name} gives up after {state['TimeoutSeconds']} s on {function_id}, which runs "
                f"{timeout_by_id[function_id]} s: its retry would run beside the invocation it gave up on")
    assert len(invoked) == len(registry.HANDLERS), "every step function is invoked by some Task"


def test_step_functions_have_the_step_timeout_and_the_fence_outlives_authorize(synth: Synth) -> None:
    by_name = functions_by_name(synth)
    for step in registry.HANDLERS:
        assert by_name[registry.function_name(step)][1]["Timeout"] == limits.STEP_LAMBDA_TIMEOUT_S, step
    authorize = by_name[registry.function_name("AuthorizeGateway")][1]
    assert authorize["Timeout"] * 1_000 < limits.FENCE_TTL_MS, "the fence must outlive the invocation holding it"
    gateway_ms = int(authorize["Environment"]["Variables"]["GATEWAY_TIMEOUT_MS"])
    # Authorize, then the lookup of an unknown outcome, then the write that records it: within one invocation.
    assert 2 * gateway_ms + limits.DB_STATEMENT_TIMEOUT_MS <= authorize["Timeout"] * 1_000


@pytest.mark.parametrize("workflow", list(Workflow))
def test_the_start_function_outlives_the_execution_it_waits_for(synth: Synth,
                                                                deployed: dict[Workflow, dict[str, Any]],
                                                                workflow: Workflow) -> None:
    """The start function waits on the saga and on each operation (StartSyncExecution), the sync too."""
    start = functions_by_name(synth)[START][1]
    machine_s = deployed[workflow]["Definition"]["TimeoutSeconds"]
    lease_wait_ms = int(start["Environment"]["Variables"]["LEASE_WAIT_MS"])
    assert start["Timeout"] == limits.START_FUNCTION_TIMEOUT_S
    assert machine_s <= limits.EXPRESS_MAX_DURATION_S
    assert machine_s * 1_000 + lease_wait_ms < start["Timeout"] * 1_000 <= limits.LAMBDA_MAX_TIMEOUT_S * 1_000
    # An operation's execution holds the payment's lease like the saga's: the lease outlives it.
    assert machine_s * 1_000 < limits.EXECUTION_LEASE_MS


def test_the_start_environment_carries_the_limits_and_their_relations(synth: Synth,
                                                                       machine: dict[str, Any]) -> None:
    start = functions_by_name(synth)[START][1]
    variables = _variables(synth, START)
    in_progress_ms = int(variables["IDEMPOTENCY_IN_PROGRESS_TTL_MS"])
    lease_ms = int(variables["EXECUTION_LEASE_MS"])
    lease_wait_ms = int(variables["LEASE_WAIT_MS"])
    assert (in_progress_ms, lease_ms, lease_wait_ms) == (
        limits.IDEMPOTENCY_IN_PROGRESS_TTL_MS, limits.EXECUTION_LEASE_MS, limits.LEASE_WAIT_MS)
    # The key stays IN_PROGRESS longer than its holder can live.
    assert in_progress_ms > start["Timeout"] * 1_000
    # The lease outlives any execution and the start function holding it, and lapses before the key's hold does,
    # even when it was taken after waiting LEASE_WAIT_MS.
    assert machine["Definition"]["TimeoutSeconds"] * 1_000 < lease_ms
    assert start["Timeout"] * 1_000 <= lease_ms
    assert lease_wait_ms + lease_ms <= in_progress_ms


def test_every_function_gets_the_gateway_timeout_of_the_limits(synth: Synth) -> None:
    for name in functions_by_name(synth):
        assert int(_variables(synth, name)["GATEWAY_TIMEOUT_MS"]) == limits.GATEWAY_TIMEOUT_MS, name


def test_a_start_answers_before_api_gateway_cuts_the_client_off(synth: Synth) -> None:
    """The timeout chain on the template: a waiting start (409) and a saga outliving the answer budget (202) both
    answer before the integration's timeout, so no client ever sees an undocumented 504 from a live start."""
    integrations = [m["Properties"]["Integration"] for m in synth.of_type("AWS::ApiGateway::Method").values()
                    if m["Properties"].get("Integration", {}).get("Type") == "AWS_PROXY"]
    assert integrations, "the API integrates the start function"
    variables = _variables(synth, START)
    lease_wait_ms, budget_ms = int(variables["LEASE_WAIT_MS"]), int(variables["START_ANSWER_BUDGET_MS"])
    assert budget_ms == limits.START_ANSWER_BUDGET_MS
    for integration in integrations:
        timeout_ms = integration.get("TimeoutInMillis", limits.API_GATEWAY_MAX_INTEGRATION_TIMEOUT_MS)
        assert timeout_ms == limits.API_INTEGRATION_TIMEOUT_MS
        assert lease_wait_ms < budget_ms < timeout_ms <= limits.API_GATEWAY_MAX_INTEGRATION_TIMEOUT_MS
