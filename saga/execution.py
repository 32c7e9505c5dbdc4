"""One saga execution of a payment, under the payment's lease: the start path and replay both run executions here.

Take the lease (waiting, within a bound, for another execution of the payment to end), record the execution with
the lease's fencing token in its input, run it synchronously, record its outcome and give the lease back. The payment
saga and the operations after checkout (a capture, cancel or refund of the payment: their own state machines) share
the payment's lease, so one execution at a time moves a payment. A payment the saga has finished (final, or
authorized for a manual capture), or an operation no longer pending, is answered from its record and runs
nothing. A holder that dies anywhere in here
leaves a lease that expires by the database's clock; until then no second execution runs the payment.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from saga.bootstrap import Services
from saga.sfn import record_outcome, recorded_execution_arn
from steps.contract import ExecutionInput
from steps.registry import Workflow
from store import lifecycle
from store.executions import insert_execution
from store.leases import Lease, LeaseHeld, release_lease, take_lease
from store.operations import get_operation
from store.payments import Payment, get_payment

__all__ = ["ExecutionRun", "PaymentBusyError", "run_execution"]

POLL_MS = 50  # how often a waiting start looks at the lease again


class PaymentBusyError(RuntimeError):
    """Another execution held the payment for the whole wait."""

    def __init__(self, held: LeaseHeld) -> None:
        super().__init__(f"payment {held.payment_id} is being run by execution {held.holder} "
                         f"(its lease lasts until {held.expires_at.isoformat()})")
        self.held = held


@dataclass(frozen=True)
class ExecutionRun:
    """What happened: the execution this call ran (None when the payment was final and nothing ran), its response,
    and the payment as recorded afterwards."""

    execution_arn: str | None
    response: dict[str, Any] | None
    payment: Payment


def _payment(engine: Engine, payment_id: int) -> Payment:
    with engine.connect() as conn:
        payment = get_payment(conn, payment_id=payment_id)
    assert payment is not None, f"payment {payment_id} is written before any execution of it"
    return payment


def _finished(engine: Engine, saga_input: ExecutionInput, payment: Payment) -> bool:
    """Nothing is left for an execution to do: the saga ended the payment, or the operation is decided."""
    if saga_input.operation_id is None:
        return payment.status in lifecycle.FINAL or lifecycle.awaiting_capture(payment.status, payment.capture_mode)
    with engine.connect() as conn:
        operation = get_operation(conn, operation_id=saga_input.operation_id)
    assert operation is not None, f"operation {saga_input.operation_id} is written before any execution of it"
    return operation.status != "pending"


def _lease(engine: Engine, *, execution_arn: str, name: str, saga_input: ExecutionInput, replay_of: str | None,
           lease_ms: int) -> tuple[Lease, dict[str, Any]] | LeaseHeld:
    """Take the lease and record the execution that will hold it, in one transaction: the lease and the input the
    execution runs with (its token included), or who holds the payment."""
    with engine.begin() as conn:
        lease = take_lease(conn, payment_id=saga_input.payment_id, holder=name, lease_ms=lease_ms)
        if isinstance(lease, LeaseHeld):
            return lease
        leased = saga_input.with_lease(lease.token).to_payload()
        insert_execution(conn, execution_arn=execution_arn, payment_id=saga_input.payment_id, name=name,
                         input=leased, replay_of=replay_of)
    return lease, leased


def run_execution(
    services: Services, *, name: str, saga_input: ExecutionInput, wait_ms: int, replay_of: str | None = None,
    workflow: Workflow = Workflow.PAYMENT,
    sleep: Callable[[float], None] = time.sleep, monotonic: Callable[[], float] = time.monotonic,
) -> ExecutionRun:
    """Run one execution of the workflow's state machine for the payment under its lease (EXECUTION_LEASE_MS);
    raise PaymentBusyError if another execution held it for all of wait_ms. `saga_input` comes without a token: the
    lease adds its own; an operation's names its operation."""
    assert wait_ms >= 0, wait_ms
    assert saga_input.lease_token is None, saga_input
    assert (workflow is Workflow.PAYMENT) == (saga_input.operation_id is None), (workflow, saga_input)
    engine, sfn = services.engine, services.sfn
    machine_arn = services.machine_arn(workflow)
    execution_arn = recorded_execution_arn(machine_arn, name)
    deadline = monotonic() + wait_ms / 1000
    while True:
        payment = _payment(engine, saga_input.payment_id)
        if replay_of is None and _finished(engine, saga_input, payment):
            return ExecutionRun(None, None, payment)  # nothing left to run: answer from the record
        taken = _lease(engine, execution_arn=execution_arn, name=name, saga_input=saga_input, replay_of=replay_of,
                       lease_ms=services.settings.execution_lease_ms)
        if not isinstance(taken, LeaseHeld):
            break
        if monotonic() >= deadline:
            raise PaymentBusyError(taken)
        sleep(POLL_MS / 1000)

    lease, leased = taken
    # A failure to start or to hear back leaves the lease held: the execution may be running, and the lease's
    # expiry (longer than any execution) is what frees the payment then.
    response = sfn.start_sync_execution(stateMachineArn=machine_arn, name=name,
                                        input=json.dumps(leased, separators=(",", ":")))
    with engine.begin() as conn:
        record_outcome(conn, sfn=sfn if services.keeps_history else None, execution_arn=execution_arn,
                       response=response)
        release_lease(conn, lease=lease)
        after = get_payment(conn, payment_id=saga_input.payment_id)
    assert after is not None
    return ExecutionRun(execution_arn, response, after)
