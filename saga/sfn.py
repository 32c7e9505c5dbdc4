"""The Step Functions seam: boto3's `stepfunctions` client on AWS; off AWS the local tooling passes its own runtime
(local.saga_runtime) through the composition root (saga.bootstrap).

Both answer `start_sync_execution(stateMachineArn=, name=, input=)` with the same response shape, so the start
path's code is the same in both places.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from botocore.config import Config
from sqlalchemy import Connection

from core import limits
from core.aws import client
from core.settings import Settings
from store.executions import finish_execution

# A saga's history is a few dozen events; the cap keeps a runaway execution from writing an unbounded row.
MAX_HISTORY_EVENTS = 1_000


class StepFunctions(Protocol):
    def start_sync_execution(self, *, stateMachineArn: str, name: str, input: str) -> dict[str, Any]: ...


def aws_step_functions(settings: Settings) -> tuple[StepFunctions, str]:
    """(boto3's client, the deployed state machine's ARN): what the start path runs on AWS."""
    assert settings.state_machine_arn, "STATE_MACHINE_ARN names the deployed state machine"
    sfn = client("stepfunctions", settings,
                 Config(read_timeout=limits.SFN_SYNC_READ_TIMEOUT_S, retries={"max_attempts": 1}))
    return sfn, settings.state_machine_arn


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
