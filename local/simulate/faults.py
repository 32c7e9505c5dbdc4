"""Fault injection around the saga's Lambda handlers, as Step Functions would see a dying or duplicated function.

`Injector.resolver` wraps `local.saga_runtime.resolve_handler`: the local runtime calls the wrapped handler exactly
where the Lambda service would run the function, so a raised `Runtime.ExitError` is what Step Functions gets from a
process that died. Faults are planned per payment (`plan_for`) and fire on the first invocation of their step for that
payment, so a replay of the same payment runs clean unless its plan says otherwise.

"inside" faults act in the step's own PostgreSQL transaction, from a SQLAlchemy `commit` hook armed only on the
thread running that step: either the process dies before COMMIT (the server rolls the transaction back) or the
step's backend is killed with pg_terminate_backend (the COMMIT fails with a lost connection).
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import random
import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
from sqlalchemy import Engine, event
from sqlalchemy.engine import Connection

from core.aws import LambdaHandler
from local.saga_runtime import PROJECT_ROOT, resolve_handler
from steps import registry
from steps.registry import Workflow

# From the registry's roles, in the saga's order (a seed's choices depend on that order: keep it).
FORWARD_STEPS = registry.with_role(registry.Role.FORWARD)
COMPENSATIONS = registry.with_role(registry.Role.COMPENSATION, registry.Role.RECOVERY)


def _workflow_steps(workflow: Workflow) -> tuple[str, ...]:
    """The steps the workflow's Tasks invoke, in the order its definition lists them."""
    definition = json.loads((PROJECT_ROOT / registry.DEFINITION_FILES[workflow]).read_text())
    found = [registry.step_of_substitution(state["Parameters"]["FunctionName"])
             for state in definition["States"].values()
             if state.get("Type") == "Task" and "FunctionName" in state.get("Parameters", {})]
    return tuple(dict.fromkeys(found))


# The operations' steps by the same roles, per workflow (an operation's faults land on its own workflow's steps).
OPERATION_FORWARD_STEPS: dict[Workflow, tuple[str, ...]] = {
    w: tuple(s for s in _workflow_steps(w) if registry.OPERATION_STEPS[s].role is registry.Role.FORWARD)
    for w in registry.OPERATIONS}
OPERATION_COMPENSATIONS: dict[Workflow, tuple[str, ...]] = {
    w: tuple(s for s in _workflow_steps(w) if registry.OPERATION_STEPS[s].role is not registry.Role.FORWARD)
    for w in registry.OPERATIONS}
# A frozen backend is thawed after at most this long, whatever happens to the thread that froze it.
MAX_FREEZE_MS = 2_000


class RuntimeExitError(Exception):
    """What the Lambda runtime reports when the function's process exits mid-invocation."""


RuntimeExitError.__name__ = "Runtime.ExitError"  # Step Functions sees the class name as the error name


class TaskTimedOutError(Exception):
    """The Task's TimeoutSeconds passed: Step Functions moves on while the invocation runs on."""


TaskTimedOutError.__name__ = "States.Timeout"


class LambdaServiceError(Exception):
    """The Lambda service failed the call (the function may run on): Step Functions retries it."""


LambdaServiceError.__name__ = "Lambda.ServiceException"

TwinHook = Callable[["Where", str, dict[str, Any]], None]


class Where(enum.StrEnum):
    BEFORE = "crash_before"  # the process dies before the handler runs
    INSIDE = "crash_inside"  # the process dies before its transaction commits
    DB_DROP = "db_drop"  # the step's PostgreSQL connection is killed mid-transaction
    AFTER = "crash_after"  # the effect is done, the response is lost
    DUPLICATE = "duplicate"  # the step is delivered twice
    REDIS_OUTAGE = "redis_outage"  # Redis stops answering for a while as the step starts
    AWS_OUTAGE = "aws_outage"  # the AWS emulator stops answering for a while as the step starts
    # The invocation runs on after Step Functions stopped waiting for it: either the Task's TimeoutSeconds passed
    # (States.Timeout, caught) or the Lambda service failed the call (retried: a second delivery runs beside it).
    TIMED_OUT = "timed_out"
    # Whole executions of the same payment, started while this one is at this step:
    TWIN_START = "twin_start"  # a start of the same payment (a client retry after the key's hold expired)
    REPLAY_RUNNING = "replay_running"  # an engineer replays the execution that is running
    TAKEOVER = "takeover"  # this execution's lease lapses here and a twin takes the payment over and runs it
    # The lease lapses while the step runs (between its lease check and its gateway call or its write, say): a twin
    # takes the payment over and runs it to its end while the stale step goes on.
    TAKEOVER_MID_STEP = "takeover_mid_step"


@dataclass(frozen=True)
class StepFault:
    step: str
    where: Where
    freeze_ms: int = 0
    retried: bool = False  # TIMED_OUT: the error Step Functions saw is one its Retry covers


@dataclass
class Plan:
    """What goes wrong for one payment."""

    step_faults: list[StepFault] = field(default_factory=list)


# The faults of the first simulation, drawn from the seed's main stream exactly as they were then, so that a pinned
# seed still replays its interleaving; the kinds added since come from a stream of their own (`plan_for`).
PROCESS_FAULTS = (Where.BEFORE, Where.INSIDE, Where.DB_DROP, Where.AFTER, Where.DUPLICATE, Where.REDIS_OUTAGE,
                  Where.AWS_OUTAGE)
EXECUTION_FAULTS = (Where.TIMED_OUT, Where.TWIN_START, Where.REPLAY_RUNNING, Where.TAKEOVER, Where.TAKEOVER_MID_STEP)
EXECUTION_FAULT_PROBABILITY = 0.4


def plan_for(rng: random.Random, more: random.Random, *, max_faults: int = 2) -> Plan:
    """A random plan of 1..max_faults process faults from rng, and maybe one execution fault from `more`. Forward
    steps always run, compensations only on some paths, so a compensation is picked more often than its share: when
    its path is taken it is hit."""
    faults: list[StepFault] = []
    for _ in range(rng.randint(1, max_faults)):
        step = rng.choice(FORWARD_STEPS) if rng.random() < 0.5 else rng.choice(COMPENSATIONS)
        where = rng.choice(PROCESS_FAULTS)
        if where is Where.REDIS_OUTAGE:
            step = "AuthorizeGateway"  # the only step that talks to Redis
        if where is Where.AWS_OUTAGE:
            step = "NotifyMerchant"  # the only step that talks to AWS (SQS)
        freeze_ms = rng.randint(100, 500) if where in (Where.REDIS_OUTAGE, Where.AWS_OUTAGE) else 0
        faults.append(StepFault(step, where, freeze_ms))
    if more.random() < EXECUTION_FAULT_PROBABILITY:
        step = more.choice(FORWARD_STEPS) if more.random() < 0.7 else more.choice(COMPENSATIONS)
        where = more.choice(EXECUTION_FAULTS)
        # TIMED_OUT: how far the invocation got when Step Functions gave up on it; TAKEOVER_MID_STEP: when the lease
        # lapses after the step started
        freeze_ms = more.randint(0, 30) if where is Where.TIMED_OUT else more.randint(0, 6) if \
            where is Where.TAKEOVER_MID_STEP else 0
        faults.append(StepFault(step, where, freeze_ms, retried=more.random() < 0.5))
    return Plan(faults)


assert set(PROCESS_FAULTS) | set(EXECUTION_FAULTS) == set(Where), "every fault is drawn from one of the two streams"


def plan_for_operation(rng: random.Random, workflow: Workflow, *, max_faults: int = 2) -> Plan:
    """A random plan for one operation (capture, cancel, refund): 1..max_faults process faults on the workflow's own
    steps, and maybe one execution fault, all from rng (the operations' own stream). A frozen backend is frozen as one
    of the operation's steps starts (none of them talks to Redis; the gate's record of the request is in DynamoDB)."""
    forward, others = OPERATION_FORWARD_STEPS[workflow], OPERATION_COMPENSATIONS[workflow] or \
        OPERATION_FORWARD_STEPS[workflow]
    faults: list[StepFault] = []
    for _ in range(rng.randint(1, max_faults)):
        step = rng.choice(forward) if rng.random() < 0.6 else rng.choice(others)
        where = rng.choice(PROCESS_FAULTS)
        freeze_ms = rng.randint(100, 500) if where in (Where.REDIS_OUTAGE, Where.AWS_OUTAGE) else 0
        faults.append(StepFault(step, where, freeze_ms))
    if rng.random() < EXECUTION_FAULT_PROBABILITY:
        step = rng.choice(forward) if rng.random() < 0.7 else rng.choice(others)
        where = rng.choice(EXECUTION_FAULTS)
        freeze_ms = rng.randint(0, 30) if where is Where.TIMED_OUT else rng.randint(0, 6) if \
            where is Where.TAKEOVER_MID_STEP else 0
        faults.append(StepFault(step, where, freeze_ms, retried=rng.random() < 0.5))
    return Plan(faults)


@dataclass(frozen=True)
class DuplicateRun:
    """Both results of a step delivered twice (error name or result), for property 3."""

    step: str
    payment_id: int
    first: Any
    second: Any


class Freezer:
    """SIGSTOP a process for a while; a timer SIGCONTs it, and thaw_all() always restores every one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frozen: dict[int, threading.Timer] = {}

    def freeze(self, pid: int, duration_ms: int) -> None:
        duration_ms = min(duration_ms, MAX_FREEZE_MS)
        with self._lock:
            if pid in self._frozen:
                return
            os.kill(pid, signal.SIGSTOP)
            timer = threading.Timer(duration_ms / 1000, self.thaw, args=(pid,))
            timer.daemon = True
            self._frozen[pid] = timer
            timer.start()

    def thaw(self, pid: int) -> None:
        with self._lock:
            timer = self._frozen.pop(pid, None)
            if timer is None:
                return
            timer.cancel()
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def thaw_all(self) -> None:
        with self._lock:
            pids = list(self._frozen)
        for pid in pids:
            self.thaw(pid)


class _Armed(threading.local):
    where: Where | None = None
    fired: bool = False


class Injector:
    """The wrapping resolver plus the hooks it needs; counts every fault that actually fired."""

    def __init__(self, *, admin_dsn: str, redis_pid: int | None, aws_pid: int | None) -> None:
        self._admin_dsn = admin_dsn  # a libpq DSN: kills a step's backend from outside its connection
        self._redis_pid = redis_pid
        self._aws_pid = aws_pid
        self._lock = threading.Lock()
        self._plans: dict[int, Plan] = {}
        self._seen: Counter[tuple[int, str]] = Counter()
        self._armed = _Armed()
        self.freezer = Freezer()
        self.fired: Counter[str] = Counter()
        self.duplicates: list[DuplicateRun] = []
        self.invocations: Counter[str] = Counter()
        self.twin_hook: TwinHook | None = None  # set by the runtime that can start whole executions
        self._orphans: list[threading.Thread] = []

    # -- lifecycle ----------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def installed(self) -> Iterator[Injector]:
        event.listen(Engine, "commit", self._on_commit)
        try:
            yield self
        finally:
            event.remove(Engine, "commit", self._on_commit)
            self.freezer.thaw_all()

    def set_plan(self, subject: int, plan: Plan) -> None:
        """The plan of a payment's saga, or of one operation (by its id: `subject_of`)."""
        with self._lock:
            self._plans[subject] = plan

    def join_orphans(self, timeout_s: float = 60.0) -> None:
        """Wait for the invocations that ran on after Step Functions stopped waiting for them."""
        with self._lock:
            orphans, self._orphans = self._orphans, []
        for thread in orphans:
            thread.join(timeout=timeout_s)
            assert not thread.is_alive(), f"{thread.name} still runs after {timeout_s} s"

    def fire(self, kind: str) -> None:
        with self._lock:
            self.fired[kind] += 1

    # -- the resolver -------------------------------------------------------------------------------------------

    def resolver(self, function: str) -> LambdaHandler:
        step = registry.step_of_function(function)
        real: LambdaHandler = resolve_handler(function)

        def handler(event_: Any, context: Any) -> Any:
            return self._invoke(step, real, event_, context)

        return handler

    def _fault_for(self, step: str, subject: int) -> StepFault | None:
        """The planned fault of the first invocation of `step` for `subject` (a payment, or an operation)."""
        with self._lock:
            self._seen[(subject, step)] += 1
            self.invocations[step] += 1
            if self._seen[(subject, step)] != 1:
                return None
            plan = self._plans.get(subject)
            if plan is None:
                return None
            return next((f for f in plan.step_faults if f.step == step), None)

    def _invoke(self, step: str, real: LambdaHandler, event_: Any, context: Any) -> Any:
        payment_id = int(event_["payment_id"]) if isinstance(event_, dict) and \
            str(event_.get("payment_id", "")).isdigit() else -1
        fault = self._fault_for(step, subject_of(event_) if payment_id != -1 else -1)
        if fault is None:
            return real(event_, context)
        where = fault.where
        if where is Where.BEFORE:
            self.fire(f"{where}:{step}")
            raise RuntimeExitError(f"{step}: the function's process exited before it ran (injected)")
        if where is Where.AFTER:
            real(event_, context)
            self.fire(f"{where}:{step}")
            raise RuntimeExitError(f"{step}: the function's process exited after its effect (injected)")
        if where is Where.DUPLICATE:
            return self._twice(step, payment_id, real, event_, context)
        if where is Where.TIMED_OUT:
            return self._timed_out(fault, step, payment_id, real, event_, context)
        if where is Where.TAKEOVER_MID_STEP:
            return self._taken_over_mid_step(fault, step, real, event_, context)
        if where in (Where.TWIN_START, Where.REPLAY_RUNNING, Where.TAKEOVER):
            if self.twin_hook is not None and isinstance(event_, dict):
                self.fire(f"{where}:{step}")
                self.twin_hook(where, step, event_)
            return real(event_, context)
        if where in (Where.REDIS_OUTAGE, Where.AWS_OUTAGE):
            pid = self._redis_pid if where is Where.REDIS_OUTAGE else self._aws_pid
            if pid is not None:
                self.freezer.freeze(pid, fault.freeze_ms)
                self.fire(str(where))
            return real(event_, context)
        return self._inside(where, step, real, event_, context)

    def _twice(self, step: str, payment_id: int, real: LambdaHandler, event_: Any, context: Any) -> Any:
        """A duplicate delivery: run it twice in a row; Step Functions gets the second answer."""
        outcomes: list[tuple[bool, Any]] = []
        for _ in range(2):
            try:
                outcomes.append((True, real(dict(event_), context)))
            except Exception as error:  # both runs must be observed, whatever they raise
                outcomes.append((False, error))
        self.fire(f"{Where.DUPLICATE}:{step}")
        with self._lock:
            self.duplicates.append(DuplicateRun(step, payment_id, _shown(outcomes[0]), _shown(outcomes[1])))
        ok, last = outcomes[1]
        if not ok:
            raise last
        return last

    def _timed_out(self, fault: StepFault, step: str, payment_id: int, real: LambdaHandler, event_: Any,  # noqa: PLR0917
                   context: Any) -> Any:
        def run_on() -> None:
            with contextlib.suppress(Exception):  # nobody hears this invocation's answer any more
                real(dict(event_), context)

        orphan = threading.Thread(target=run_on, name=f"sim-orphan-{step}-{payment_id}", daemon=True)
        with self._lock:
            self._orphans.append(orphan)
        orphan.start()
        orphan.join(timeout=fault.freeze_ms / 1000)
        self.fire(f"{Where.TIMED_OUT}{'_retried' if fault.retried else ''}:{step}")
        if fault.retried:
            raise LambdaServiceError(f"{step}: the Lambda service failed the call; the invocation runs on (injected)")
        raise TaskTimedOutError(f"{step}: TimeoutSeconds passed; the invocation runs on (injected)")

    def _taken_over_mid_step(self, fault: StepFault, step: str, real: LambdaHandler, event_: Any,
                             context: Any) -> Any:
        """The step runs on its thread; fault.freeze_ms into it the lease lapses and a twin runs the payment to its
        end; then the step's own answer (or error) goes back to Step Functions."""
        answer: dict[str, Any] = {}

        def run() -> None:
            try:
                answer["result"] = real(dict(event_), context)
            except Exception as error:  # handed to Step Functions below, as the Lambda runtime would
                answer["error"] = error

        stale = threading.Thread(target=run, name=f"sim-stale-{step}", daemon=True)
        stale.start()
        stale.join(timeout=fault.freeze_ms / 1000)
        if self.twin_hook is not None and isinstance(event_, dict):
            self.fire(f"{Where.TAKEOVER_MID_STEP}{'' if stale.is_alive() else '_after_end'}:{step}")
            self.twin_hook(Where.TAKEOVER, step, event_)
        stale.join(timeout=120)
        assert not stale.is_alive(), f"{step} still runs 120 s after its lease lapsed"
        if "error" in answer:
            raise answer["error"]
        return answer["result"]

    def _inside(self, where: Where, step: str, real: LambdaHandler, event_: Any, context: Any) -> Any:
        self._armed.where, self._armed.fired = where, False
        try:
            return real(event_, context)
        finally:
            if self._armed.fired:
                self.fire(f"{where}:{step}")
            self._armed.where, self._armed.fired = None, False

    # -- inside a transaction -----------------------------------------------------------------------------------

    def _on_commit(self, conn: Connection) -> None:
        where = self._armed.where
        if where is None or self._armed.fired:
            return
        self._armed.fired = True
        if where is Where.INSIDE:
            raise RuntimeExitError("the function's process exited before COMMIT (injected)")
        # Where.DB_DROP: the server ends this connection; the COMMIT that follows finds it gone.
        driver = conn.connection.driver_connection
        backend_pid = driver.info.backend_pid if driver is not None else None
        if backend_pid is None:
            return
        with psycopg.connect(self._admin_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (backend_pid,))  # waits until it is gone


def subject_of(event_: Any) -> int:
    """Whose plan an execution's input falls under: its operation's (a capture, cancel or refund: each has a plan of
    its own, though several share a payment), else its payment's."""
    operation = event_.get("operation_id") if isinstance(event_, dict) else None
    if operation is not None and str(operation).isdigit():
        return int(operation)
    return int(event_["payment_id"])


def _shown(outcome: tuple[bool, Any]) -> Any:
    ok, value = outcome
    return value if ok else {"error": type(value).__name__}
