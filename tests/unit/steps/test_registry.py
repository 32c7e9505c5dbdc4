"""Step roles are declared once, in the registry, and they agree with the state machine that wires the steps, the
simulation that chooses where faults land, and the CDK app that sizes and alarms each function."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local.simulate.faults import COMPENSATIONS, FORWARD_STEPS
from steps import registry
from steps.registry import Role

STATE_MACHINE = Path(__file__).resolve().parents[3] / "statemachine.asl.json"


def _tasks() -> dict[str, dict[str, Any]]:
    """State name -> state, for every Task, keyed by the registry step it invokes."""
    states = json.loads(STATE_MACHINE.read_text())["States"]
    tasks: dict[str, dict[str, Any]] = {}
    for state in states.values():
        if state["Type"] == "Task":
            function = state["Parameters"]["FunctionName"]
            tasks[registry.step_of_substitution(function)] = state
    return tasks


def _reachable(start: str, states: dict[str, Any]) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        state = states[name]
        todo += [state["Next"]] if "Next" in state else []
        todo += [c["Next"] for c in state.get("Catch", [])]
    return seen


def test_every_registered_step_is_a_task_of_the_saga_and_back() -> None:
    assert set(_tasks()) == set(registry.STEPS)


def test_each_compensation_runs_when_its_step_or_a_later_one_fails() -> None:
    states = json.loads(STATE_MACHINE.read_text())["States"]
    names = {step: name for name, state in states.items() if state["Type"] == "Task"
             for step in [registry.step_of_substitution(state["Parameters"]["FunctionName"])]}
    forward = registry.with_role(Role.FORWARD)
    for step, declared in registry.STEPS.items():
        if declared.role is not Role.COMPENSATION:
            continue
        assert declared.compensates is not None
        from_here = forward[forward.index(declared.compensates):]
        after_failure = set().union(*(_reachable(c["Next"], states) for f in from_here
                                      for c in states[names[f]]["Catch"]))
        assert names[step] in after_failure, f"{step} is never reached when {declared.compensates} or later fails"
        before = forward[:forward.index(declared.compensates)]
        too_early = set().union(*(_reachable(c["Next"], states) for f in before for c in states[names[f]]["Catch"]))
        assert names[step] not in too_early, f"{step} runs when a step before {declared.compensates} fails"


def test_recovery_steps_end_the_saga_and_are_never_compensated() -> None:
    tasks = _tasks()
    for step in registry.with_role(Role.RECOVERY):
        catches = [c["ErrorEquals"] for c in tasks[step].get("Catch", [])]
        assert catches in ([], [["ExecutionSuperseded"]]), (step, catches)
    assert registry.with_role(Role.RECOVERY) == ("ParkNotification", "ParkPayment")
    assert registry.PIVOT in registry.with_role(Role.FORWARD)


def test_the_simulation_draws_its_steps_from_the_registry_in_the_saga_order() -> None:
    assert FORWARD_STEPS == ("ValidatePayment", "ReserveBalance", "AuthorizeGateway", "CaptureOrVoid", "CommitLedger",
                             "NotifyMerchant")
    assert COMPENSATIONS == ("RejectPayment", "ReleaseReservation", "VoidAuthorization", "RefundCapture",
                             "ReverseLedger", "ParkNotification", "ParkPayment")


def test_a_placeholder_names_its_step_or_none() -> None:
    assert registry.step_of_substitution(f"${{{registry.substitution_key('CaptureOrVoid')}}}") == "CaptureOrVoid"
    for wrong in ("${Nope FunctionArn}", "${CaptureOrVoid}", "CaptureOrVoidFunctionArn"):
        with pytest.raises(KeyError):
            registry.step_of_substitution(wrong)
