"""Replay (DESIGN 9): Express executions cannot be redriven, so a failed or parked payment is replayed by starting a
NEW execution for the same payment with the recorded input, under a lease of its own. Idempotent steps skip what
already took effect; the saga then continues or compensates. A payment another execution is running is not
replayed: the replay would race it.

A replay someone asks for (the CLI, the console) goes through replay_audited: it is written to the append-only
replay_audit table before it starts ('requested': who, why, which execution) and once it ended ('finished': the new
execution and its outcome, or 'refused' and why)."""

from __future__ import annotations

from dataclasses import dataclass

from ulid import ULID

from saga.bootstrap import Services
from saga.execution import PaymentBusyError, run_execution
from steps.contract import ExecutionInput
from steps.registry import Workflow
from store.executions import ExecutionRecord, find_execution, get_execution
from store.lifecycle import PaymentStatus as Status
from store.operations import get_operation
from store.payments import get_payment
from store.replay_audit import record_audit

__all__ = ["NOTHING_TO_REPLAY", "REFUSED", "ReplayError", "ReplayOutcome", "replay", "replay_audited"]

# A payment in one of these is finished for the saga: replaying it would change nothing.
NOTHING_TO_REPLAY = frozenset({Status.SUCCEEDED})
# The outcome of a 'finished' audit row whose replay was refused (its detail says why).
REFUSED = "refused"
# An audit detail is for people: an unexpected error's message is cut to this.
_MAX_DETAIL = 2000


class ReplayError(RuntimeError):
    """The execution cannot be replayed; the message says why."""


@dataclass(frozen=True)
class ReplayOutcome:
    execution_arn: str
    status: str
    error: str | None
    payment_status: str


def replay(services: Services, execution_arn: str) -> ReplayOutcome:
    with services.engine.connect() as conn:
        original: ExecutionRecord | None = get_execution(conn, execution_arn=execution_arn)
        if original is None:
            raise ReplayError(f"no recorded execution {execution_arn}")
        payment = get_payment(conn, payment_id=original.payment_id)
        try:
            recorded = ExecutionInput.parse(original.input, leased=False)
        except ValueError as error:
            raise ReplayError(f"execution {execution_arn} recorded an input that is not a saga's: {error}") from error
        operation = None if recorded.operation_id is None else get_operation(conn, operation_id=recorded.operation_id)
    assert payment is not None, "saga_executions rows are written with their payment"
    workflow = Workflow.PAYMENT
    if recorded.operation_id is not None:  # an operation's execution: it is the operation that may be finished
        if operation is None:
            raise ReplayError(f"execution {execution_arn} names operation {recorded.operation_id}, which is unknown")
        if operation.status != "pending":
            raise ReplayError(f"{operation.kind} {operation.id} is {operation.status}: nothing to replay")
        workflow = Workflow(operation.kind)
    elif payment.status in NOTHING_TO_REPLAY:
        raise ReplayError(f"payment {payment.id} is {payment.status}: nothing to replay")
    try:
        run = run_execution(services, name=f"replay-{payment.id}-{ULID()}", saga_input=recorded.with_lease_cleared(),
                            wait_ms=0, replay_of=original.execution_arn, workflow=workflow)
    except PaymentBusyError as error:
        raise ReplayError(f"{error}: replay it once that execution has ended") from error
    assert run.execution_arn is not None and run.response is not None, "a replay always runs an execution"
    return ReplayOutcome(run.execution_arn, str(run.response["status"]), run.response.get("error"),
                         run.payment.status)


def _audit(services: Services, *, operator: str, reason: str, execution_arn: str, action: str,
           new_execution_arn: str | None = None, outcome: str | None = None, detail: str | None = None) -> None:
    with services.engine.begin() as conn:  # its own transaction: the row stays whatever the replay does next
        record_audit(conn, operator=operator, reason=reason, execution_arn=execution_arn, action=action,
                     new_execution_arn=new_execution_arn, outcome=outcome, detail=detail)


def replay_audited(services: Services, execution: str, *, operator: str, reason: str) -> ReplayOutcome:
    """replay, asked for by `operator` for `reason`, written to replay_audit. `execution` is an ARN or an execution's
    name. An unknown execution, a blank operator or reason are refused (ReplayError) before anything is written; the
    'requested' row is written before the replay starts, the 'finished' row once it ended or was refused."""
    if not reason.strip():
        raise ReplayError("a replay needs a reason: say why the execution is replayed")
    if not operator.strip():
        raise ReplayError("a replay needs an operator: say who replays")
    with services.engine.connect() as conn:
        original = find_execution(conn, execution.strip())
    if original is None:
        raise ReplayError(f"no recorded execution {execution}")
    arn = original.execution_arn
    _audit(services, operator=operator, reason=reason, execution_arn=arn, action="requested")
    try:
        outcome = replay(services, arn)
    except ReplayError as error:
        _audit(services, operator=operator, reason=reason, execution_arn=arn, action="finished", outcome=REFUSED,
               detail=str(error))
        raise
    except Exception as error:
        _audit(services, operator=operator, reason=reason, execution_arn=arn, action="finished", outcome="error",
               detail=f"{type(error).__name__}: {error}"[:_MAX_DETAIL])
        raise
    _audit(services, operator=operator, reason=reason, execution_arn=arn, action="finished",
           new_execution_arn=outcome.execution_arn,
           outcome=outcome.status if outcome.error is None else f"{outcome.status} {outcome.error}",
           detail=f"payment {original.payment_id} is {outcome.payment_status}")
    return outcome
