"""Test helpers for the ASL runtime: a fake clock that never sleeps, and a harness that registers a definition,
maps function names to Python handlers and records every handler call."""

from __future__ import annotations

import json
import random
import threading
from typing import Any

from core.aws import LambdaHandler
from local.asl import LocalStepFunctions
from local.asl.clock import ManualClock
from local.asl.lambda_invoke import function_name_of

FakeClock = ManualClock  # the runtime's own virtual clock




class Harness:
    """One LocalStepFunctions with a fake clock and recorded calls: (function name, event)."""

    def __init__(self, handlers: dict[str, LambdaHandler] | None = None, *, seed: int = 7) -> None:
        self.handlers: dict[str, LambdaHandler] = dict(handlers or {})
        self.calls: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        self._machines = 0
        self.clock = FakeClock()
        self.sfn = LocalStepFunctions(self.resolve, clock=self.clock, rng=random.Random(seed))

    def resolve(self, function: str) -> LambdaHandler:
        name = function_name_of(function)
        handler = self.handlers[name]

        def recorded(event: Any, context: Any) -> Any:
            with self._lock:
                self.calls.append((name, event))
            return handler(event, context)

        return recorded

    def register(self, definition: dict[str, Any] | str, name: str | None = None, **kwargs: Any) -> str:
        if name is None:
            self._machines += 1
            name = f"sm{self._machines}"
        text = definition if isinstance(definition, str) else json.dumps(definition)
        return str(self.sfn.create_state_machine(name=name, definition=text, **kwargs)["stateMachineArn"])

    def run(self, definition: dict[str, Any] | str, payload: Any = None, **kwargs: Any) -> dict[str, Any]:
        arn = self.register(definition, **kwargs)
        return self.sfn.start_sync_execution(stateMachineArn=arn, input=json.dumps(
            {} if payload is None else payload))

    def call_names(self) -> list[str]:
        return [name for name, _ in self.calls]


def output(response: dict[str, Any]) -> Any:
    assert response["status"] == "SUCCEEDED", response
    return json.loads(response["output"])


def pass_machine(state: dict[str, Any]) -> dict[str, Any]:
    """A one-state machine around state (End added)."""
    return {"StartAt": "S", "States": {"S": {**state, "End": True}}}


def lambda_arn(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:123456789012:function:{name}"


def task_machine(state: dict[str, Any], function: str = "fn") -> dict[str, Any]:
    """A one-Task machine calling a bare Lambda ARN."""
    return {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": lambda_arn(function), **state,
                                             "End": True}}}
