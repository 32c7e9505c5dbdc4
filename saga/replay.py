"""Replay (DESIGN 9): Express executions cannot be redriven, so a failed or parked payment is replayed by starting a
NEW execution for the same payment with the recorded input, under a lease of its own. Idempotent steps skip what
already took effect; the saga then continues or compensates. A payment another execution is running is not
replayed: the replay would race it."""

from __future__ import annotations

from dataclasses import dataclass

from ulid import ULID

from core.db import engine as db_engine
from core.settings import Settings
from ledger.executions import Execution, get_execution
from ledger.payments import get_payment
from saga.execution import PaymentBusyError, run_execution
from saga.sfn import step_functions

# A payment in one of these is finished for the saga: replaying it would change nothing.
NOTHING_TO_REPLAY = frozenset({"succeeded"})


class ReplayError(RuntimeError):
    """The execution cannot be replayed; the message says why."""


@dataclass(frozen=True)
class ReplayOutcome:
    execution_arn: str
    status: str
    error: str | None
    payment_status: str


def replay(settings: Settings, execution_arn: str) -> ReplayOutcome:
    engine = db_engine(settings)
    with engine.connect() as conn:
        original: Execution | None = get_execution(conn, execution_arn=execution_arn)
        if original is None:
            raise ReplayError(f"no recorded execution {execution_arn}")
        payment = get_payment(conn, payment_id=original.payment_id)
    assert payment is not None, "saga_executions rows are written with their payment"
    if payment.status in NOTHING_TO_REPLAY:
        raise ReplayError(f"payment {payment.id} is {payment.status}: nothing to replay")
    sfn, arn = step_functions(settings)
    saga_input = {k: v for k, v in original.input.items() if k != "lease_token"}  # the replay gets its own
    try:
        run = run_execution(engine, sfn, arn, payment_id=payment.id, name=f"replay-{payment.id}-{ULID()}",
                            execution_input=saga_input, lease_ms=settings.execution_lease_ms, wait_ms=0,
                            replay_of=original.execution_arn, history=not settings.state_machine_arn)
    except PaymentBusyError as error:
        raise ReplayError(f"{error}: replay it once that execution has ended") from error
    assert run.execution_arn is not None and run.response is not None, "a replay always runs an execution"
    return ReplayOutcome(run.execution_arn, str(run.response["status"]), run.response.get("error"),
                         run.payment.status)
