"""core/limits.py against the places that repeat or use its values: the settings defaults, the fence, the database
engine and statemachine.asl.json (the synthesized CDK template: tests/unit/infra/test_limits.py). Also the whole saga's
worst case, computed from the ASL file: every Task's attempts at their timeout plus every backoff wait, along the
longest path."""

from __future__ import annotations

import ast
import inspect
import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from core import db, limits
from core.settings import Settings
from steps import fence

LIMITS_FILE = Path(limits.__file__)
STATE_MACHINE_FILE = Path(__file__).resolve().parents[3] / "statemachine.asl.json"

# ASL defaults (States Language spec) for fields a Retrier or Task may leave out.
ASL_DEFAULT_MAX_ATTEMPTS = 3
ASL_DEFAULT_INTERVAL_S = 1
ASL_DEFAULT_BACKOFF_RATE = 2.0


# ---- the worst case of an ASL definition -------------------------------------------------------------------------


def retry_waits_s(retrier: Mapping[str, Any]) -> float:
    """The longest a retrier can wait in all: IntervalSeconds x BackoffRate^k, capped by MaxDelaySeconds, for each of
    its MaxAttempts retries (full jitter only ever shortens a wait)."""
    interval = retrier.get("IntervalSeconds", ASL_DEFAULT_INTERVAL_S)
    rate = retrier.get("BackoffRate", ASL_DEFAULT_BACKOFF_RATE)
    cap = retrier.get("MaxDelaySeconds")
    waits = (interval * rate**k for k in range(retrier.get("MaxAttempts", ASL_DEFAULT_MAX_ATTEMPTS)))
    return float(sum(min(wait, cap) if cap is not None else wait for wait in waits))


def task_worst_case_s(state: Mapping[str, Any]) -> float:
    """Every attempt at TimeoutSeconds plus every wait between them. Each retrier counts its own attempts (ASL; the
    local interpreter does the same), so a Task can make 1 + the SUM of its retriers' MaxAttempts attempts: three
    Lambda service errors, then four TransientErrors."""
    retriers = state.get("Retry", [])
    attempts = 1 + sum(r.get("MaxAttempts", ASL_DEFAULT_MAX_ATTEMPTS) for r in retriers)
    return float(state["TimeoutSeconds"] * attempts + sum(retry_waits_s(r) for r in retriers))


def _successors(state: Mapping[str, Any]) -> list[str]:
    found = [state["Next"]] if "Next" in state else []
    found += [catcher["Next"] for catcher in state.get("Catch", [])]
    found += [choice["Next"] for choice in state.get("Choices", [])]
    found += [state["Default"]] if "Default" in state else []
    return found


def _cost_s(name: str, state: Mapping[str, Any]) -> float:
    kind = state["Type"]
    if kind == "Task":
        return task_worst_case_s(state)
    if kind == "Wait":
        assert "Seconds" in state, f"{name}: a Wait without a fixed Seconds has no bound"
        return float(state["Seconds"])
    assert kind in {"Pass", "Choice", "Succeed", "Fail"}, f"{name}: no worst case for a {kind} state"
    return 0.0


def saga_worst_case_s(definition: Mapping[str, Any]) -> tuple[float, list[str]]:
    """The longest any run of the top-level states can take, and the path that takes it (Next, Catch and Choice
    edges, each Task at its worst). The definition's own TimeoutSeconds is not applied: it is what caps this."""
    states: Mapping[str, Mapping[str, Any]] = definition["States"]
    longest: dict[str, tuple[float, list[str]]] = {}

    def visit(name: str, on_path: tuple[str, ...]) -> tuple[float, list[str]]:
        assert name not in on_path, f"a cycle through {name}: only TimeoutSeconds bounds it"
        if name not in longest:
            state = states[name]
            tails = [visit(after, (*on_path, name)) for after in _successors(state)]
            tail_s, tail = max(tails, key=lambda t: t[0], default=(0.0, []))
            longest[name] = (_cost_s(name, state) + tail_s, [name, *tail])
        return longest[name]

    return visit(definition["StartAt"], ())


def test_the_worst_case_counts_every_attempt_every_wait_and_the_longest_branch() -> None:
    definition: dict[str, Any] = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Task", "TimeoutSeconds": 10, "Next": "C",
                  "Retry": [{"ErrorEquals": ["X"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 3.0},
                            {"ErrorEquals": ["Y"], "IntervalSeconds": 2, "MaxAttempts": 3, "BackoffRate": 2.0,
                             "MaxDelaySeconds": 5}],
                  "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "B"}]},
            "B": {"Type": "Task", "TimeoutSeconds": 5, "Next": "Failed"},
            "C": {"Type": "Task", "TimeoutSeconds": 1, "Next": "Done"},
            "Done": {"Type": "Succeed"},
            "Failed": {"Type": "Fail"},
        },
    }
    # A: 1 + 2 + 3 attempts at 10 s, waits 1 + 3 and 2 + 4 + 5 (capped); then B (5 s) beats C (1 s).
    assert task_worst_case_s(definition["States"]["A"]) == 60 + 4 + 11
    assert saga_worst_case_s(definition) == (80.0, ["A", "B", "Failed"])
    definition["States"]["B"]["Next"] = "A"
    with pytest.raises(AssertionError, match="cycle"):
        saga_worst_case_s(definition)


# ---- core/limits.py itself ------------------------------------------------------------------------------------------


def test_limits_imports_the_standard_library_only() -> None:
    """infra may import core.limits (import-linter lets it): it must not drag runtime code along."""
    tree = ast.parse(LIMITS_FILE.read_text())
    imported = {alias.name.partition(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {(node.module or "").partition(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported - {"__future__"} <= set(sys.stdlib_module_names), imported


@pytest.mark.parametrize(("limit", "old_value", "refusal"), [
    # The two contradictions the issue found: both must be refused at import, not merely noticed.
    ("FENCE_TTL_MS", "5_000", "the fence must outlive the fenced section"),
    ("IDEMPOTENCY_IN_PROGRESS_TTL_MS", "START_FUNCTION_TIMEOUT_S * 1_000", "longer than its holder can live"),
    ("LEASE_WAIT_MS", "29_000", "still answers within its budget"),
    ("START_ANSWER_BUDGET_MS", "API_INTEGRATION_TIMEOUT_MS", "before API Gateway cuts the client off"),
    ("TASK_TIMEOUT_S", "31", "a Task must not give up on an invocation that may still run"),
])
def test_a_limit_that_breaks_a_relation_is_refused_at_import(limit: str, old_value: str, refusal: str) -> None:
    source, replaced = re.subn(rf"^{limit}: Final\[int\] = .*$", f"{limit}: Final[int] = {old_value}",
                               LIMITS_FILE.read_text(), count=1, flags=re.MULTILINE)
    assert replaced == 1, f"core/limits.py no longer defines {limit} on one line"
    with pytest.raises(AssertionError, match=refusal):
        exec(compile(source, str(LIMITS_FILE), "exec"), {"__name__": "limits_under_test"})


# ---- the code that uses the limits ---------------------------------------------------------------------------------


def test_settings_default_to_the_limits_and_accept_them_together() -> None:
    fields = Settings.model_fields
    assert fields["gateway_timeout_ms"].default == limits.GATEWAY_TIMEOUT_MS
    assert fields["idempotency_in_progress_ttl_ms"].default == limits.IDEMPOTENCY_IN_PROGRESS_TTL_MS
    assert fields["execution_lease_ms"].default == limits.EXECUTION_LEASE_MS
    assert fields["lease_wait_ms"].default == limits.LEASE_WAIT_MS
    assert fields["start_answer_budget_ms"].default == limits.START_ANSWER_BUDGET_MS
    # The defaults pass settings' own relation check (the lease within the key's hold).
    defaults = Settings(DATABASE_URL="postgresql://u@db/x", REDIS_URL="redis://127.0.0.1:6379/0")  # type: ignore[call-arg]
    assert defaults.idempotency_in_progress_ttl_ms > limits.START_FUNCTION_TIMEOUT_S * 1_000
    assert defaults.execution_lease_ms <= defaults.idempotency_in_progress_ttl_ms


def test_the_fence_takes_its_ttl_and_timeouts_from_the_limits() -> None:
    # What AuthorizeGateway gets when it passes no TTL: the default of the function it calls.
    assert inspect.signature(fence.authorize_fence).parameters["ttl_ms"].default == limits.FENCE_TTL_MS
    assert inspect.signature(fence.fence_client).parameters["socket_timeout_ms"].default \
        == limits.FENCE_SOCKET_TIMEOUT_MS
    assert fence.FENCE_RETRIES == limits.FENCE_REDIS_RETRIES
    fenced_section_ms = 2 * Settings.model_fields["gateway_timeout_ms"].default + db.STATEMENT_TIMEOUT_MS
    assert fenced_section_ms < limits.FENCE_TTL_MS


def test_the_database_engine_takes_its_timeouts_from_the_limits() -> None:
    assert db.STATEMENT_TIMEOUT_MS == limits.DB_STATEMENT_TIMEOUT_MS
    assert db.CONNECT_TIMEOUT_S == limits.DB_CONNECT_TIMEOUT_S
    engine = db.engine_for("postgresql+psycopg://u@127.0.0.1:1/x")  # built lazily: nothing connects
    assert engine.pool.timeout() == limits.DB_POOL_TIMEOUT_S  # type: ignore[attr-defined]


# ---- statemachine.asl.json -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return dict(json.loads(STATE_MACHINE_FILE.read_text()))


def _tasks(definition: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {name: state for name, state in definition["States"].items() if state["Type"] == "Task"}


def test_every_task_gives_up_no_sooner_than_its_lambda(definition: dict[str, Any]) -> None:
    tasks = _tasks(definition)
    assert tasks
    for name, state in tasks.items():
        assert "TimeoutSeconds" in state, f"{name} has no TimeoutSeconds: ASL's default (60 s) would apply"
        assert state["TimeoutSeconds"] <= limits.STEP_LAMBDA_TIMEOUT_S, (
            f"{name} times out after {state['TimeoutSeconds']} s, before its Lambda ({limits.STEP_LAMBDA_TIMEOUT_S} s)"
            ": its retry would run beside the invocation it gave up on")
        assert state["TimeoutSeconds"] == limits.TASK_TIMEOUT_S, f"{name}: core/limits.py records another value"
    # The fence outlives the Task attempt that holds it.
    assert tasks["AuthorizeGateway"]["TimeoutSeconds"] * 1_000 < limits.FENCE_TTL_MS


def test_the_state_machine_timeout_sits_between_an_execution_and_its_start_function(
        definition: dict[str, Any]) -> None:
    machine_s = definition.get("TimeoutSeconds")
    assert machine_s == limits.STATE_MACHINE_TIMEOUT_S, "core/limits.py records another value"
    assert machine_s <= limits.EXPRESS_MAX_DURATION_S
    assert machine_s * 1_000 + limits.LEASE_WAIT_MS < limits.START_FUNCTION_TIMEOUT_S * 1_000
    assert machine_s * 1_000 < limits.EXECUTION_LEASE_MS <= limits.IDEMPOTENCY_IN_PROGRESS_TTL_MS
    assert machine_s < limits.SFN_SYNC_READ_TIMEOUT_S


def test_the_whole_sagas_worst_case_is_capped_before_its_start_function_ends(
        definition: dict[str, Any], record_property: Any) -> None:
    worst_s, path = saga_worst_case_s(definition)
    machine_s = definition["TimeoutSeconds"]
    record_property("saga_worst_case_s", worst_s)
    found = (f"worst case of the saga from statemachine.asl.json: {worst_s:.0f} s along {' -> '.join(path)}; "
             f"state machine TimeoutSeconds {machine_s} s, start function {limits.START_FUNCTION_TIMEOUT_S} s, "
             f"in-progress expiry {limits.IDEMPOTENCY_IN_PROGRESS_TTL_MS / 1_000:.0f} s")
    print(found)
    # Past TimeoutSeconds the execution ends States.Timeout, whatever its retries had left: the saga's bound is the
    # smaller of the two (today TimeoutSeconds: the retries alone could run far longer), and the start function,
    # which may first wait for the lease, must outlive it.
    bound_s = min(worst_s, machine_s)
    assert bound_s * 1_000 + limits.LEASE_WAIT_MS < limits.START_FUNCTION_TIMEOUT_S * 1_000, found
    assert limits.START_FUNCTION_TIMEOUT_S * 1_000 < limits.IDEMPOTENCY_IN_PROGRESS_TTL_MS, found


def test_a_failing_webhook_is_retried_over_about_a_day() -> None:
    total_s = sum(limits.WEBHOOK_RETRY_SCHEDULE_S)
    assert 20 * 3_600 <= total_s <= total_s * (1 + limits.WEBHOOK_RETRY_JITTER_PERCENT / 100) <= 30 * 3_600
    assert len(limits.WEBHOOK_RETRY_SCHEDULE_S) + 1 == limits.WEBHOOK_MAX_ATTEMPTS
