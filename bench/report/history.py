"""Per-step durations from a saga execution's history (Step Functions events, as saga_executions.history stores
them: `timestamp` as text, `TaskStateEntered` naming the state, then TaskScheduled ... TaskSucceeded/Failed)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

EXECUTION = "(execution)"  # ExecutionStarted -> the execution's last event
TASK_END = ("TaskSucceeded", "TaskFailed", "TaskTimedOut", "LambdaFunctionSucceeded", "LambdaFunctionFailed",
            "LambdaFunctionTimedOut")
TASK_START = ("TaskScheduled", "LambdaFunctionScheduled")


def _ts(event: dict[str, Any]) -> datetime:
    value = event["timestamp"]
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def step_durations_ms(events: list[dict[str, Any]]) -> dict[str, float]:
    """State name -> ms from its task being scheduled to its answer (summed over retries), plus EXECUTION."""
    durations: dict[str, float] = {}
    state = ""
    scheduled: datetime | None = None
    for event in events:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            state = str(event.get("stateEnteredEventDetails", {}).get("name", ""))
        elif kind in TASK_START:
            scheduled = _ts(event)
        elif kind in TASK_END and scheduled is not None:
            durations[state] = durations.get(state, 0.0) + (_ts(event) - scheduled).total_seconds() * 1000
            scheduled = None
    if events:
        durations[EXECUTION] = (_ts(events[-1]) - _ts(events[0])).total_seconds() * 1000
    return durations
