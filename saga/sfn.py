"""The Step Functions seam: boto3's `stepfunctions` client on AWS, the local ASL runtime everywhere else.

Both answer `start_sync_execution(stateMachineArn=, name=, input=)` with the same response shape, so the start
handler's code is the same in both places.
"""

from __future__ import annotations

import functools
import importlib
import json
from pathlib import Path
from typing import Any, Protocol

from botocore.config import Config
from sqlalchemy import Connection

from core.aws import client
from core.settings import Settings
from ledger.executions import finish_execution
from steps import registry

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STATE_MACHINE_FILE = PROJECT_ROOT / "statemachine.asl.json"
LOCAL_REGION = "eu-west-1"
LOCAL_ACCOUNT = "000000000000"
LOCAL_STATE_MACHINE_NAME = "paysaga-payment-saga"
# Express synchronous executions last at most 5 minutes: botocore must wait longer than that for the answer.
SYNC_READ_TIMEOUT_S = 330
# A saga's history is a few dozen events; the cap keeps a runaway execution from writing an unbounded row.
MAX_HISTORY_EVENTS = 1_000


class StepFunctions(Protocol):
    def start_sync_execution(self, *, stateMachineArn: str, name: str, input: str) -> dict[str, Any]: ...


def resolve_handler(function: str) -> Any:
    """FunctionName (name or ARN, as substituted into the definition) -> the registered Python handler."""
    module_name, _, attribute = registry.HANDLERS[registry.step_of_function(function)].partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def local_state_machine_arn() -> str:
    return f"arn:aws:states:{LOCAL_REGION}:{LOCAL_ACCOUNT}:stateMachine:{LOCAL_STATE_MACHINE_NAME}"


def local_substitutions() -> dict[str, str]:
    return registry.definition_substitutions(region=LOCAL_REGION, account=LOCAL_ACCOUNT)


@functools.cache
def _local_client(definition_file: Path) -> Any:
    from saga.asl import LocalStepFunctions  # noqa: PLC0415  # only off AWS

    local = LocalStepFunctions(resolver=resolve_handler, region=LOCAL_REGION, account=LOCAL_ACCOUNT)
    local.create_state_machine(
        name=LOCAL_STATE_MACHINE_NAME,
        definition=definition_file.read_text(),
        roleArn=f"arn:aws:iam::{LOCAL_ACCOUNT}:role/paysaga-local",
        type="EXPRESS",
        definitionSubstitutions=local_substitutions(),
    )
    return local


def step_functions(settings: Settings) -> tuple[StepFunctions, str]:
    """(client, state machine ARN) for these settings."""
    if settings.state_machine_arn:
        sfn = client("stepfunctions", settings, Config(read_timeout=SYNC_READ_TIMEOUT_S, retries={"max_attempts": 1}))
        return sfn, settings.state_machine_arn
    definition = Path(settings.local_state_machine_file) if settings.local_state_machine_file else STATE_MACHINE_FILE
    return _local_client(definition.resolve()), local_state_machine_arn()


def history_of(sfn: Any, execution_arn: str) -> list[dict[str, Any]] | None:
    """The execution's event history where the service keeps one we can read (the local runtime). Express
    executions on AWS keep theirs in CloudWatch Logs only, so there it is None."""
    if not hasattr(sfn, "get_execution_history"):
        return None
    try:
        events = sfn.get_execution_history(executionArn=execution_arn)["events"]
    except Exception:  # history is a convenience; its absence must not fail a payment
        return None
    return list(json.loads(json.dumps(events[:MAX_HISTORY_EVENTS], default=str)))


def recorded_execution_arn(state_machine_arn: str, name: str) -> str:
    """The key of our saga_executions row, known before the start (AWS appends a uuid to the real Express ARN)."""
    return f"{state_machine_arn.replace(':stateMachine:', ':express:')}:{name}"


def record_outcome(conn: Connection, *, sfn: Any | None, execution_arn: str, response: dict[str, Any]) -> None:
    """Write a finished execution's status, error, cause and history into its saga_executions row; the history is
    read from sfn where one is given (the local runtime keeps it; Express on AWS keeps it in CloudWatch Logs)."""
    history = None if sfn is None else history_of(sfn, str(response.get("executionArn", execution_arn)))
    finish_execution(conn, execution_arn=execution_arn, status=str(response["status"]), error=response.get("error"),
                     cause=response.get("cause"), history=history)


def execution_input(payment_id: int, merchant_id: str, capture_amount_minor: int | None = None) -> dict[str, Any]:
    """Steps read the payment itself from PostgreSQL; the input names it (ids as strings: 63-bit) and carries what
    the request asked that the payment row does not hold (a partial capture). The lease adds its token
    (saga.execution)."""
    data: dict[str, Any] = {"payment_id": str(payment_id), "merchant_id": merchant_id}
    if capture_amount_minor is not None:
        data["capture_amount_minor"] = capture_amount_minor
    return data
