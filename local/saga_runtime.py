"""The payment saga on the local ASL runtime: the state machine file, the handlers the registry names, and the
services of the start path wired to them (what `make run`, the CLI, the benchmarks and the tests use off AWS)."""

from __future__ import annotations

import functools
import importlib
from pathlib import Path
from typing import Any

from core.settings import Settings
from local.asl import LocalStepFunctions
from local.aws_names import LOCAL_ACCOUNT, LOCAL_REGION
from saga.bootstrap import IdSource, Services, bootstrap
from saga.idempotency import IdempotencyGate
from saga.sfn import StepFunctions
from steps import registry
from steps.registry import Workflow

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STATE_MACHINE_FILE = PROJECT_ROOT / registry.DEFINITION_FILES[Workflow.PAYMENT]
LOCAL_STATE_MACHINE_NAME = "paysaga-payment-saga"


def resolve_handler(function: str) -> Any:
    """FunctionName (name or ARN, as substituted into the definition) -> the registered Python handler."""
    module_name, _, attribute = registry.HANDLERS[registry.step_of_function(function)].partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def local_state_machine_arn(name: str = LOCAL_STATE_MACHINE_NAME) -> str:
    return f"arn:aws:states:{LOCAL_REGION}:{LOCAL_ACCOUNT}:stateMachine:{name}"


def local_substitutions() -> dict[str, str]:
    return registry.definition_substitutions(region=LOCAL_REGION, account=LOCAL_ACCOUNT)


def create_operation_machines(local: LocalStepFunctions, role: str = "paysaga-local") -> dict[Workflow, str]:
    """Create the operations' state machines (capture, cancel, refund: each from its own file) on a local runtime."""
    made: dict[Workflow, str] = {}
    for workflow in registry.OPERATIONS:
        made[workflow] = local.create_state_machine(
            name=f"{LOCAL_STATE_MACHINE_NAME}-{workflow.value}",
            definition=(PROJECT_ROOT / registry.DEFINITION_FILES[workflow]).read_text(),
            roleArn=f"arn:aws:iam::{LOCAL_ACCOUNT}:role/{role}", type="EXPRESS",
            definitionSubstitutions=local_substitutions())["stateMachineArn"]
    return made


def create_saga_machine(local: LocalStepFunctions, definition: Path = STATE_MACHINE_FILE,
                        role: str = "paysaga-local") -> str:
    """Create the saga's state machine on a local runtime; its ARN."""
    arn: str = local.create_state_machine(
        name=LOCAL_STATE_MACHINE_NAME, definition=definition.read_text(),
        roleArn=f"arn:aws:iam::{LOCAL_ACCOUNT}:role/{role}", type="EXPRESS",
        definitionSubstitutions=local_substitutions())["stateMachineArn"]
    return arn


@functools.cache
def _runtime(definition: Path) -> tuple[LocalStepFunctions, str, dict[Workflow, str]]:
    local = LocalStepFunctions(resolver=resolve_handler, region=LOCAL_REGION, account=LOCAL_ACCOUNT)
    return local, create_saga_machine(local, definition), create_operation_machines(local)


def _runtime_of(settings: Settings) -> tuple[LocalStepFunctions, str, dict[Workflow, str]]:
    definition = Path(settings.local_state_machine_file) if settings.local_state_machine_file else STATE_MACHINE_FILE
    return _runtime(definition.resolve())


def local_step_functions(settings: Settings) -> tuple[StepFunctions, str]:
    """(the local runtime, the saga's ARN on it), one per process and definition file (LOCAL_STATE_MACHINE_FILE lets a
    benchmark swap in a trivial machine)."""
    local, arn, _ = _runtime_of(settings)
    return local, arn


def local_services(settings: Settings, *, step_functions: tuple[StepFunctions, str] | None = None,
                   gate: IdempotencyGate | None = None, ids: IdSource | None = None,
                   operation_machines: dict[Workflow, str] | None = None) -> Services:
    """The start path's services off AWS: the deployed state machines when STATE_MACHINE_ARN names one, else the
    local runtime's (a caller passing its own runtime passes the operations' machines on it too)."""
    if step_functions is None and not settings.state_machine_arn:
        local, arn, operation_machines = _runtime_of(settings)
        step_functions = (local, arn)
    return bootstrap(settings, step_functions=step_functions, gate=gate, ids=ids,
                     operation_machines=operation_machines)
