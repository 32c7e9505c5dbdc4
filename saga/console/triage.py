"""Which executions an engineer should look at: one rule, used by `paysaga executions list` and by the console.

A failed execution is not by itself a problem: a decline, a fraud refusal, a limit end the saga correctly in a Fail
state named after the business outcome, and an execution another one superseded ended without effect. What needs a
person is an execution that ended on a fault (an invariant the database refused, a bad deployment, a timeout, an
abort, a state machine error) or on our infrastructure staying down (ServiceUnavailable, GatewayUnavailable: outcomes
for the merchant, but not the card's doing), and any execution whose payment is parked (needs_attention). A failed
execution of a payment that has succeeded since (a replay or the status sync finished it) needs no one any more; an
operation's execution (a capture, cancel or refund) is judged on its own, whatever its payment's status.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from steps.errors import BUSINESS_ERRORS, RETRYABLE_FAILURES
from store.executions import MAX_LIST, ExecutionRecord, list_executions, payment_statuses
from store.lifecycle import PaymentStatus

__all__ = ["CONCLUDED_ERRORS", "ENDED_BADLY", "list_needing_attention", "needs_attention"]

# The execution statuses that are not a success (RUNNING is not an end: nothing to look at yet).
ENDED_BADLY = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
# Error names of a saga that ended as it should: final business outcomes, and the supersession of an execution by
# another one that holds the payment (statemachine.asl.json's ExecutionSuperseded Fail state).
CONCLUDED_ERRORS = (BUSINESS_ERRORS - RETRYABLE_FAILURES) | {"ExecutionSuperseded"}


def needs_attention(record: ExecutionRecord, payment_status: str | None) -> bool:
    """True for a FAILED/TIMED_OUT/ABORTED execution that did not end on a business outcome, or whose payment is
    parked; not for a payment's execution once the payment succeeded. payment_status: the payment's status now (None
    when the payment row does not exist)."""
    if record.status not in ENDED_BADLY:
        return False
    if payment_status == PaymentStatus.NEEDS_ATTENTION:
        return True
    if payment_status == PaymentStatus.SUCCEEDED and "operation_id" not in record.input:
        return False  # a replay or the sync finished the payment since: nothing is left to do (replay refuses it)
    return record.error not in CONCLUDED_ERRORS


def list_needing_attention(
    conn: Connection,
    *,
    limit: int = 100,
    status: str | None = None,
    payment_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    merchant_id: str | None = None,
    error: str | None = None,
    before: tuple[datetime, str] | None = None,
) -> list[tuple[ExecutionRecord, str | None]]:
    """The executions that need attention among those list_executions gives for these filters, newest first, with
    their payment's status: at most `limit`, read page by page (keyset) until that many were found or none are left."""
    wanted = min(max(limit, 1), MAX_LIST)
    found: list[tuple[ExecutionRecord, str | None]] = []
    cursor = before
    while len(found) < wanted:
        page = list_executions(conn, status=status, payment_id=payment_id, limit=MAX_LIST, since=since, until=until,
                               merchant_id=merchant_id, error=error, before=cursor)
        statuses = payment_statuses(conn, payment_ids=(r.payment_id for r in page))
        found.extend((r, statuses.get(r.payment_id)) for r in page if needs_attention(r, statuses.get(r.payment_id)))
        if len(page) < MAX_LIST:
            break
        cursor = (page[-1].started_at, page[-1].execution_arn)
    return found[:wanted]
