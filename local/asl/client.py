"""LocalStepFunctions: the boto3 `stepfunctions` client's method names and response shapes over the local
interpreter. Thread-safe; each execution runs on the calling thread (start_sync_execution) and its Lambda
handlers on a bounded worker pool."""

from __future__ import annotations

import concurrent.futures
import json
import math
import random
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from botocore.exceptions import ClientError

from local.asl.clock import Clock, SystemClock
from local.asl.definition import DefinitionError, StateMachine, load_definition
from local.asl.errors import TIMEOUT
from local.asl.history import History
from local.asl.interpreter import PAYLOAD_LIMIT_BYTES, Execution, Outcome, iso_millis
from local.asl.lambda_invoke import Resolver

EXPRESS_MAX_DURATION_S = 300  # StartSyncExecution on an Express workflow runs at most 5 minutes
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,80}$")  # the characters AWS accepts in state machine/execution names
_ERROR_CODES = ("StateMachineDoesNotExist", "StateMachineAlreadyExists", "InvalidDefinition", "InvalidName",
                "InvalidArn", "InvalidExecutionInput", "ExecutionDoesNotExist", "StateMachineTypeNotSupported",
                "ExecutionAlreadyExists", "ValidationException")
_BILLED_MEMORY_MB = 64
_BILLING_INCREMENT_MS = 100


def _client_error(code: str, message: str, operation: str) -> ClientError:
    response: Any = {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}}
    return ClientError(response, operation)


def _outcome_fields(outcome: Outcome) -> dict[str, Any]:
    """`output` of a success, or `error`/`cause` of a failure, as Step Functions' responses carry them."""
    if outcome.status == "SUCCEEDED":
        return {"output": json.dumps(outcome.output, separators=(",", ":"), ensure_ascii=False),
                "outputDetails": {"included": True}}
    fields: dict[str, Any] = {}
    if outcome.error is not None:
        fields["error"] = outcome.error
    if outcome.cause is not None:
        fields["cause"] = outcome.cause
    return fields


@dataclass
class _Machine:
    arn: str
    name: str
    definition: str
    machine: StateMachine
    role_arn: str
    type: str
    created: datetime


@dataclass
class _ExecutionRecord:
    arn: str
    state_machine_arn: str
    name: str
    input: str
    start: datetime
    history: History
    status: str = "RUNNING"
    stop: datetime | None = None
    outcome: Outcome | None = None
    done: threading.Event = field(default_factory=threading.Event)


class LocalStepFunctions:
    """A local stand-in for `boto3.client("stepfunctions")`."""

    def __init__(
        self,
        resolver: Resolver,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        region: str = "us-east-1",
        account: str = "123456789012",
        max_workers: int = 64,
        max_kept_executions: int = 10_000,
    ) -> None:
        self._resolver = resolver
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 - jitter and ids, not secrets
        self._rng_lock = threading.Lock()
        self.region = region
        self.account = account
        self._lock = threading.Lock()
        self._machines: dict[str, _Machine] = {}
        self._executions: OrderedDict[str, _ExecutionRecord] = OrderedDict()
        self._max_kept = max_kept_executions
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=max_workers,
                                                               thread_name_prefix="asl-lambda")
        self.exceptions = SimpleNamespace(**{code: ClientError for code in _ERROR_CODES})

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ---- state machines -----------------------------------------------------------------------------------

    def state_machine_arn(self, name: str) -> str:
        return f"arn:aws:states:{self.region}:{self.account}:stateMachine:{name}"

    def create_state_machine(
        self,
        *,
        name: str,
        definition: str,
        roleArn: str = "",
        type: str = "EXPRESS",
        definitionSubstitutions: Mapping[str, str] | None = None,
        **_unused: Any,
    ) -> dict[str, Any]:
        """boto3's create_state_machine, plus definitionSubstitutions (CloudFormation's DefinitionSubstitutions)."""
        if not _NAME_RE.match(name):
            raise _client_error("InvalidName", f"Invalid Name: '{name}'", "CreateStateMachine")
        arn = self.state_machine_arn(name)
        return self._register(arn, name, definition, roleArn, kind=type, substitutions=definitionSubstitutions,
                              replace=False)

    def register(self, arn: str, definition: str, substitutions: Mapping[str, str] | None = None,
                 *, type: str = "EXPRESS", role_arn: str = "") -> dict[str, Any]:
        """Register (or replace) a definition under a given ARN, e.g. the one the CDK stack outputs."""
        if not arn.startswith("arn:") or ":stateMachine:" not in arn:
            raise _client_error("InvalidArn", f"Invalid Arn: '{arn}'", "CreateStateMachine")
        name = arn.split(":stateMachine:", 1)[1].split(":", 1)[0]
        return self._register(arn, name, definition, role_arn, kind=type, substitutions=substitutions,
                              replace=True)

    def _register(self, arn: str, name: str, definition: str, role_arn: str, *, kind: str,
                  substitutions: Mapping[str, str] | None, replace: bool) -> dict[str, Any]:
        if kind not in {"EXPRESS", "STANDARD"}:
            raise _client_error("ValidationException", f"Invalid type {kind!r}", "CreateStateMachine")
        try:
            machine = load_definition(definition, substitutions)
        except DefinitionError as exc:
            raise _client_error("InvalidDefinition", f"Invalid State Machine Definition: {exc}",
                                "CreateStateMachine") from exc
        created = self._clock.now()
        with self._lock:
            existing = self._machines.get(arn)
            if not replace and existing is not None:
                if (existing.definition, existing.type, existing.role_arn) == (definition, kind, role_arn):
                    return {"stateMachineArn": arn, "creationDate": existing.created}  # AWS: idempotent
                raise _client_error("StateMachineAlreadyExists", f"State Machine Already Exists: '{arn}'",
                                    "CreateStateMachine")
            self._machines[arn] = _Machine(arn, name, definition, machine, role_arn, kind, created)
        return {"stateMachineArn": arn, "creationDate": created}

    def _machine(self, arn: str, operation: str) -> _Machine:
        with self._lock:
            machine = self._machines.get(arn)
        if machine is None:
            raise _client_error("StateMachineDoesNotExist", f"State Machine Does Not Exist: '{arn}'", operation)
        return machine

    def describe_state_machine(self, *, stateMachineArn: str) -> dict[str, Any]:
        machine = self._machine(stateMachineArn, "DescribeStateMachine")
        return {"stateMachineArn": machine.arn, "name": machine.name, "status": "ACTIVE",
                "definition": machine.definition, "roleArn": machine.role_arn, "type": machine.type,
                "creationDate": machine.created, "loggingConfiguration": {"level": "OFF",
                                                                          "includeExecutionData": False}}

    def list_state_machines(self, **_unused: Any) -> dict[str, Any]:
        with self._lock:
            machines = list(self._machines.values())
        return {"stateMachines": [{"stateMachineArn": m.arn, "name": m.name, "type": m.type,
                                   "creationDate": m.created} for m in machines]}

    def delete_state_machine(self, *, stateMachineArn: str) -> dict[str, Any]:
        with self._lock:
            self._machines.pop(stateMachineArn, None)
        return {}

    # ---- executions -----------------------------------------------------------------------------------------

    def start_sync_execution(self, *, stateMachineArn: str, name: str | None = None,
                             input: str = "{}", **_unused: Any) -> dict[str, Any]:
        """Run an Express execution to completion on this thread and return StartSyncExecution's response."""
        machine = self._machine(stateMachineArn, "StartSyncExecution")
        if machine.type != "EXPRESS":
            raise _client_error("StateMachineTypeNotSupported",
                                "This operation is not supported by this type of state machine",
                                "StartSyncExecution")
        record = self._run(machine, name, input, "StartSyncExecution")
        outcome = record.outcome
        assert outcome is not None and record.stop is not None
        duration_ms = (record.stop - record.start).total_seconds() * 1000
        response: dict[str, Any] = {
            "executionArn": record.arn,
            "stateMachineArn": machine.arn,
            "name": record.name,
            "startDate": record.start,
            "stopDate": record.stop,
            "status": outcome.status,
            "input": record.input,
            "inputDetails": {"included": True},
            "billingDetails": {
                "billedMemoryUsedInMB": _BILLED_MEMORY_MB,
                "billedDurationInMilliseconds": max(1, math.ceil(duration_ms / _BILLING_INCREMENT_MS))
                * _BILLING_INCREMENT_MS,
            },
            "ResponseMetadata": {"HTTPStatusCode": 200, "RequestId": str(uuid.uuid4())},
        }
        response.update(_outcome_fields(outcome))
        return response

    def start_execution(self, *, stateMachineArn: str, name: str | None = None,
                        input: str = "{}", **_unused: Any) -> dict[str, Any]:
        """Start an execution in the background (a thread); poll describe_execution for its end."""
        machine = self._machine(stateMachineArn, "StartExecution")
        record = self._prepare(machine, name, input, "StartExecution")
        threading.Thread(target=self._execute, args=(machine, record), daemon=True,
                         name=f"asl-execution-{record.name}").start()
        return {"executionArn": record.arn, "startDate": record.start}

    def describe_execution(self, *, executionArn: str) -> dict[str, Any]:
        record = self._record(executionArn, "DescribeExecution")
        response: dict[str, Any] = {"executionArn": record.arn, "stateMachineArn": record.state_machine_arn,
                                    "name": record.name, "status": record.status, "startDate": record.start,
                                    "input": record.input, "inputDetails": {"included": True}}
        outcome = record.outcome
        if outcome is not None:
            response["stopDate"] = record.stop
            response.update(_outcome_fields(outcome))
        return response

    def wait_for_execution(self, executionArn: str, timeout_s: float) -> bool:
        """Block until a started execution ends (local helper, not a boto3 method). True when it ended."""
        return self._record(executionArn, "DescribeExecution").done.wait(timeout_s)

    def get_execution_history(self, *, executionArn: str, reverseOrder: bool = False,
                              **_unused: Any) -> dict[str, Any]:
        events = self._record(executionArn, "GetExecutionHistory").history.events()
        return {"events": list(reversed(events)) if reverseOrder else events}

    def list_executions(self, *, stateMachineArn: str, statusFilter: str | None = None,
                        **_unused: Any) -> dict[str, Any]:
        with self._lock:
            records = [r for r in self._executions.values() if r.state_machine_arn == stateMachineArn]
        return {"executions": [
            {"executionArn": r.arn, "stateMachineArn": r.state_machine_arn, "name": r.name, "status": r.status,
             "startDate": r.start, **({"stopDate": r.stop} if r.stop else {})}
            for r in reversed(records) if statusFilter is None or r.status == statusFilter]}

    def _record(self, arn: str, operation: str) -> _ExecutionRecord:
        with self._lock:
            record = self._executions.get(arn)
        if record is None:
            raise _client_error("ExecutionDoesNotExist", f"Execution Does Not Exist: '{arn}'", operation)
        return record

    def _prepare(self, machine: _Machine, name: str | None, input_text: str, operation: str) -> _ExecutionRecord:
        if name is None:
            with self._rng_lock:
                name = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        if not _NAME_RE.match(name):
            raise _client_error("InvalidName", f"Invalid Name: '{name}'", operation)
        if len(input_text.encode("utf-8")) > PAYLOAD_LIMIT_BYTES:
            raise _client_error("InvalidExecutionInput", "Input exceeds the 262144-byte limit", operation)
        try:
            json.loads(input_text)
        except json.JSONDecodeError as exc:
            raise _client_error("InvalidExecutionInput", f"Invalid State Machine Execution Input: '{exc}'",
                                operation) from exc
        if machine.type == "EXPRESS":
            with self._rng_lock:
                suffix = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
            arn = f"arn:aws:states:{self.region}:{self.account}:express:{machine.name}:{name}:{suffix}"
        else:
            arn = f"arn:aws:states:{self.region}:{self.account}:execution:{machine.name}:{name}"
        record = _ExecutionRecord(arn=arn, state_machine_arn=machine.arn, name=name, input=input_text,
                                  start=self._clock.now(), history=History())
        with self._lock:
            if arn in self._executions:
                raise _client_error("ExecutionAlreadyExists", f"Execution Already Exists: '{arn}'", operation)
            self._executions[arn] = record
            while len(self._executions) > self._max_kept:
                self._executions.popitem(last=False)
        return record

    def _run(self, machine: _Machine, name: str | None, input_text: str, operation: str) -> _ExecutionRecord:
        record = self._prepare(machine, name, input_text, operation)
        self._execute(machine, record)
        return record

    def _execute(self, machine: _Machine, record: _ExecutionRecord) -> None:
        input_value = json.loads(record.input)
        timeout_s: float | None = machine.machine.timeout_s
        if machine.type == "EXPRESS":
            timeout_s = EXPRESS_MAX_DURATION_S if timeout_s is None else min(timeout_s, EXPRESS_MAX_DURATION_S)
        deadline = None if timeout_s is None else self._clock.monotonic() + timeout_s
        with self._rng_lock:
            seed = self._rng.getrandbits(64)
        execution = Execution(
            machine=machine.machine,
            execution={"Id": record.arn, "Input": input_value, "StartTime": iso_millis(record.start),
                       "Name": record.name, "RoleArn": machine.role_arn, "RedriveCount": 0},
            state_machine={"Id": machine.arn, "Name": machine.name},
            clock=self._clock,
            rng=random.Random(seed),  # noqa: S311 - per execution, so concurrent executions stay reproducible
            resolver=self._resolver,
            history=record.history,
            executor=self._executor,
            deadline_monotonic_s=deadline,
            region=self.region,
            account=self.account,
        )
        started = record.history.add(record.start, "ExecutionStarted", 0, "executionStartedEventDetails",
                                     {"input": record.input, "inputDetails": {"truncated": False},
                                      "roleArn": machine.role_arn})
        outcome = execution.run(input_value, started)
        stop = self._clock.now()
        last = len(record.history.events())
        if outcome.status == "SUCCEEDED":
            record.history.add(stop, "ExecutionSucceeded", last, "executionSucceededEventDetails",
                               {"output": json.dumps(outcome.output, separators=(",", ":"), ensure_ascii=False),
                                "outputDetails": {"truncated": False}})
        elif outcome.status == "TIMED_OUT":
            record.history.add(stop, "ExecutionTimedOut", last, "executionTimedOutEventDetails",
                               {"error": TIMEOUT})
        else:
            details = {k: v for k, v in (("error", outcome.error), ("cause", outcome.cause)) if v is not None}
            record.history.add(stop, "ExecutionFailed", last, "executionFailedEventDetails", details)
        record.outcome = outcome
        record.stop = stop
        record.status = outcome.status
        record.done.set()
