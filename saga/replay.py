"""Replay (DESIGN 9): Express executions cannot be redriven, so a failed or parked payment is replayed by starting a
NEW execution for the same payment with the recorded input. Idempotent steps skip what already took effect; the
saga then continues or compensates."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ulid import ULID

from core.db import engine as db_engine
from core.settings import Settings
from ledger.executions import Execution, get_execution, insert_execution
from ledger.payments import get_payment
from saga.sfn import record_outcome, recorded_execution_arn, step_functions

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
    name = f"replay-{payment.id}-{ULID()}"
    new_arn = recorded_execution_arn(arn, name)
    payload = json.dumps(original.input, separators=(",", ":"))
    with engine.begin() as conn:
        insert_execution(conn, execution_arn=new_arn, payment_id=payment.id, name=name, input=original.input,
                         replay_of=original.execution_arn)
    response = sfn.start_sync_execution(stateMachineArn=arn, name=name, input=payload)
    with engine.begin() as conn:
        record_outcome(conn, settings=settings, sfn=sfn, execution_arn=new_arn, response=response)
        after = get_payment(conn, payment_id=payment.id)
    assert after is not None
    return ReplayOutcome(new_arn, str(response["status"]), response.get("error"), after.status)
