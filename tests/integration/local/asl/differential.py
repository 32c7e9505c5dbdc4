"""The differential harness: the same corpus definition, input and scripted handlers run through the local runtime
and through moto's Step Functions engine (its LocalStack-derived interpreter), with moto's Lambda dispatch patched
to call the same Python handlers in-process."""

from __future__ import annotations

import io
import json
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.asl import LocalStepFunctions
from local.asl.clock import ManualClock
from local.asl.lambda_invoke import LambdaContext, LambdaFunctionError, function_name_of, invoke

REGION = "us-east-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/paysaga-test"
_ERRORS: dict[str, type[Exception]] = {}


def error_class(name: str) -> type[Exception]:
    """An exception class named name: the Error a handler raising it reports."""
    if name not in _ERRORS:
        _ERRORS[name] = type(name, (Exception,), {})
    return _ERRORS[name]


def default_result(name: str, event: Any) -> Any:
    if name == "HelloFunction":
        return "Hello, " + event["who"] + "!"
    if name == "AddressFinder":
        return {"address": "1 Main St"}
    if name == "PhoneFinder":
        return {"phone": "555-0100"}
    return {"fn": name, "event": event}


@dataclass
class Script:
    """Per function name, the outcomes of its successive calls: None succeeds, a string raises that error class.
    The last outcome repeats. Calls are recorded as (function name, event)."""

    plan: dict[str, list[str | None]] = field(default_factory=dict)
    calls: list[tuple[str, Any]] = field(default_factory=list)
    _counts: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handler(self, function: str) -> Callable[[Any, Any], Any]:
        name = function_name_of(function)

        def run(event: Any, context: Any) -> Any:
            with self._lock:
                index = self._counts.get(name, 0)
                self._counts[name] = index + 1
                self.calls.append((name, event))
            outcomes = self.plan.get(name, [None])
            outcome = outcomes[min(index, len(outcomes) - 1)]
            if outcome is not None:
                raise error_class(outcome)(f"{name} failed on call {index + 1}")
            return default_result(name, event)

        return run


@dataclass
class Result:
    status: str
    output: Any
    error: str | None
    cause: str | None


def run_local(definition: str, payload: Any, script: Script) -> Result:
    sfn = LocalStepFunctions(script.handler, clock=ManualClock(), rng=random.Random(1))
    arn = sfn.create_state_machine(name="corpus", definition=definition, roleArn=ROLE_ARN)["stateMachineArn"]
    response = sfn.start_sync_execution(stateMachineArn=arn, input=json.dumps(payload))
    sfn.close()
    return Result(response["status"], json.loads(response["output"]) if "output" in response else None,
                  response.get("error"), response.get("cause"))


class _SyncThread:
    """Stands in for moto's execution thread so start_execution returns after the execution ends."""

    def __init__(self, target: Callable[[], None], daemon: bool = True) -> None:
        self._target = target

    def start(self) -> None:
        self._target()


class _FakeLambdaClient:
    """moto's Step Functions engine calls `lambda.invoke`; this answers it from the Python handlers."""

    def __init__(self, script: Script) -> None:
        self._script = script

    def invoke(self, **parameters: Any) -> dict[str, Any]:
        payload = parameters.get("Payload", b"{}")
        text = payload.decode() if isinstance(payload, bytes) else (payload or "{}")
        function = parameters["FunctionName"]
        context = LambdaContext(function_name=function_name_of(function), invoked_function_arn=function,
                                aws_request_id="moto-request", deadline_monotonic_s=900.0, monotonic=lambda: 0.0)
        response: dict[str, Any] = {"StatusCode": 200, "ExecutedVersion": "$LATEST"}
        try:
            result = invoke(self._script.handler(function), text, context)
        except LambdaFunctionError as error:
            response["FunctionError"] = "Unhandled"
            body = error.cause or "{}"
        else:
            body = json.dumps(result)
        response["Payload"] = io.BytesIO(body.encode())
        return response


@contextmanager
def moto_engine(monkeypatch: pytest.MonkeyPatch, script: Script) -> Iterator[Any]:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.backend import execution_worker

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        monkeypatch.setattr(lambda_eval_utils, "boto_client_for", lambda **_: _FakeLambdaClient(script))
        monkeypatch.setattr(retrier_decl, "time", SimpleNamespace(sleep=lambda seconds: None))
        monkeypatch.setattr(execution_worker, "Thread", _SyncThread)
        yield boto3.client("stepfunctions", region_name=REGION)


def run_moto(monkeypatch: pytest.MonkeyPatch, definition: str, payload: Any, script: Script) -> Result:
    with moto_engine(monkeypatch, script) as sfn:
        arn = sfn.create_state_machine(name="corpus", definition=definition, roleArn=ROLE_ARN)["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(payload))["executionArn"]
        described = sfn.describe_execution(executionArn=execution)
    assert described["status"] != "RUNNING", "moto's execution did not finish synchronously"
    return Result(described["status"], _moto_output(described.get("output")), described.get("error"),
                  described.get("cause"))


def _moto_output(text: str | None) -> Any:
    # Known moto deviation: a top-level string output comes back unquoted ("Public" instead of "\"Public\""),
    # where AWS always returns JSON text. Read it as the string it stands for.
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
