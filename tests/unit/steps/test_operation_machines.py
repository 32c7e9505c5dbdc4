"""The operations' state machines (capture.asl.json, cancel.asl.json, refund.asl.json) agree with the registry:
each is a valid definition the local runtime (and so Step Functions' rules it checks) accepts, its Tasks invoke
registered operation steps, every operation step is invoked by some machine, every Task retries only TransientError
among our errors and never ends an execution on an error no Catch names, and a gateway's unknown outcome is never
routed to FailOperation past the point where money may have moved."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local.asl.definition import load_definition
from local.saga_runtime import local_substitutions
from steps import registry
from steps.errors import BUSINESS_ERRORS
from steps.registry import Workflow

ROOT = Path(__file__).resolve().parents[3]


def _states(workflow: Workflow) -> dict[str, Any]:
    return dict(json.loads((ROOT / registry.DEFINITION_FILES[workflow]).read_text())["States"])


def _tasks(workflow: Workflow) -> dict[str, dict[str, Any]]:
    return {registry.step_of_substitution(state["Parameters"]["FunctionName"]): state
            for state in _states(workflow).values() if state["Type"] == "Task"}


@pytest.mark.parametrize("workflow", list(Workflow))
def test_every_definition_is_valid_with_the_registry_s_substitutions(workflow: Workflow) -> None:
    load_definition((ROOT / registry.DEFINITION_FILES[workflow]).read_text(), local_substitutions())


def test_the_operations_invoke_exactly_the_operation_steps() -> None:
    invoked = {step for workflow in registry.OPERATIONS for step in _tasks(workflow)}
    assert invoked == set(registry.OPERATION_STEPS)
    assert not invoked & set(registry.STEPS), "an operation reuses no Lambda function of the payment saga"


@pytest.mark.parametrize("workflow", registry.OPERATIONS)
def test_every_task_retries_transients_and_catches_everything(workflow: Workflow) -> None:
    for step, task in _tasks(workflow).items():
        retried = {error for retry in task["Retry"] for error in retry["ErrorEquals"]}
        assert "TransientError" in retried, step
        assert not retried & BUSINESS_ERRORS, f"{step} retries a business outcome"
        caught = [catch["ErrorEquals"] for catch in task["Catch"]]
        assert caught[0] == ["ExecutionSuperseded"], step
        if step != "ParkOperation":  # the last resort: its own failure leaves the operation pending for the sync
            assert ["States.ALL"] in caught, f"{step} lets an error end the execution uncaught"


def test_past_the_gateway_an_operation_recovers_forward() -> None:
    """Where the gateway may have moved money (a capture taken, a refund sent), only the gateway's own refusal
    (CaptureFailed, RefundFailed) fails the operation; anything else parks it for the sync."""
    for workflow, step, refusal in ((Workflow.CAPTURE, "CaptureAuthorization", "CaptureFailed"),
                                    (Workflow.REFUND, "RefundAtGateway", "RefundFailed")):
        catches = {tuple(c["ErrorEquals"]): c["Next"] for c in _tasks(workflow)[step]["Catch"]}
        assert catches[(refusal,)] == "FailOperation"
        assert catches[("States.ALL",)] == "ParkOperation"
    for workflow, step in ((Workflow.CAPTURE, "CommitCapture"), (Workflow.REFUND, "PostRefund"),
                           (Workflow.CANCEL, "CancelAuthorization")):
        targets = {c["Next"] for c in _tasks(workflow)[step]["Catch"]}
        assert targets == {"ExecutionSuperseded", "ParkOperation"}, (workflow, step)


def test_a_refund_pending_at_the_gateway_ends_the_execution_without_failing_it() -> None:
    states = _states(Workflow.REFUND)
    decided = states[states["RefundAtGateway"]["Next"]]
    assert decided["Type"] == "Choice"
    pending = [c for c in decided["Choices"] if c.get("StringEquals") == "pending"]
    assert len(pending) == 1 and states[pending[0]["Next"]]["Type"] == "Succeed"
    assert decided["Default"] == "PostRefund"


def test_the_saga_ends_a_manual_capture_payment_authorized() -> None:
    states = _states(Workflow.PAYMENT)
    choice = states[states["CaptureOrVoid"]["Next"]]
    assert choice["Type"] == "Choice" and choice["Default"] == "CommitLedger"
    held = [c for c in choice["Choices"] if c.get("StringEquals") == "held"]
    assert len(held) == 1 and states[held[0]["Next"]]["Type"] == "Succeed"
