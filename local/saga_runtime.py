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

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STATE_MACHINE_FILE = PROJECT_ROOT / "statemachine.asl.json"
LOCAL_STATE_MACHINE_NAME = "paysaga-payment-saga"


def resolve_handler(function: str) -> Any:
    """FunctionName (name or ARN, as substituted into the definition) -> the registered Python handler."""
    module_name, _, attribute = registry.HANDLERS[registry.step_of_function(function)].partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def local_state_machine_arn(name: str = LOCAL_STATE_MACHINE_NAME) -> str:
    return f"arn:aws:states:{LOCAL_REGION}:{LOCAL_ACCOUNT}:stateMachine:{name}"


def local_substitutions() -> dict[str, str]:
    return registry.definition_substitutions(region=LOCAL_REGION, account=LOCAL_ACCOUNT)


def create_saga_machine(local: LocalStepFunctions, definition: Path = STATE_MACHINE_FILE,
                        role: str = "paysaga-local") -> str:
    """Create the saga's state machine on a local runtime; its ARN."""
    arn: str = local.create_state_machine(
        name=LOCAL_STATE_MACHINE_NAME, definition=definition.read_text(),
        roleArn=f"arn:aws:iam::{LOCAL_ACCOUNT}:role/{role}", type="EXPRESS",
        definitionSubstitutions=local_substitutions())["stateMachineArn"]
    return arn


@functools.cache
def _runtime(definition: Path) -> tuple[LocalStepFunctions, str]:
    local = LocalStepFunctions(resolver=resolve_handler, region=LOCAL_REGION, account=LOCAL_ACCOUNT)
    return local, create_saga_machine(local, definition)


def local_step_functions(settings: Settings) -> tuple[StepFunctions, str]:
    """(the local runtime, the saga's ARN on it), one per process and definition file (LOCAL_STATE_MACHINE_FILE lets a
    benchmark swap in a trivial machine)."""
    definition = Path(settings.local_state_machine_file) if settings.local_state_machine_file else STATE_MACHINE_FILE
    return _runtime(definition.resolve())


def local_services(settings: Settings, *, step_functions: tuple[StepFunctions, str] | None = None,
                   gate: IdempotencyGate | None = None, ids: IdSource | None = None) -> Services:
    """The start path's services off AWS: the deployed state machine when STATE_MACHINE_ARN names one, else the
    local runtime."""
    if step_functions is None and not settings.state_machine_arn:
        step_functions = local_step_functions(settings)
    return bootstrap(settings, step_functions=step_functions, gate=gate, ids=ids)
