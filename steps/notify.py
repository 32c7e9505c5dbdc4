"""Step 6, NotifyMerchant: publish the outbox row to SQS (deduplication id = the event's ULID), mark it sent.
Compensation: ParkNotification leaves it for redelivery; a payment is never unwound because a notification failed."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection

from core import observability
from core import telemetry_names as names
from steps import deps
from steps.payment_state import check_lease, claim, load, move
from steps.runtime import StepInput, StepResult, step
from store.lifecycle import PaymentStatus as Status
from store.outbox import OutboxEvent, event_message, get_event, mark_sent, record_attempt


def _event(data: StepInput) -> tuple[str, OutboxEvent]:
    payment_id = data.payment_id
    with deps.engine().connect() as conn:
        payment = load(conn, payment_id)
        check_lease(payment, data)
        event_type = "payment.review" if payment.status == Status.REVIEW else "payment.succeeded"
        event = get_event(conn, payment_id=payment_id, event_type=event_type)
    if event is None:
        raise ValueError(f"payment {payment_id} has no {event_type} event: CommitLedger writes it")
    return payment.status, event


def _finish(conn: Connection, data: StepInput) -> None:
    """committed -> succeeded (a payment held for review stays in review)."""
    payment = claim(conn, data)
    if payment.status == Status.COMMITTED:
        move(conn, payment, Status.SUCCEEDED, data)


@step("NotifyMerchant")
def _notify(data: StepInput) -> StepResult:
    _, event = _event(data)
    if event.sent_at is None:
        deps.sqs().send_message(
            QueueUrl=deps.notifications_queue_url(),
            MessageBody=event_message(event),  # the event's one JSON form: {"id", "type", "created_at", "data"}
            MessageGroupId=str(data.payment_id),
            MessageDeduplicationId=event.id,  # a resend after a crash between send and mark is dropped by SQS
        )
    published = False
    with deps.engine().begin() as conn:  # marked sent and the status moved in one commit
        _finish(conn, data)
        if event.sent_at is None:
            published = mark_sent(conn, event_id=event.id).applied
    if published:  # this invocation published it (a redelivery after a crash finds it marked: not counted twice)
        lag_ms = (datetime.now(UTC) - event.created_at).total_seconds() * 1000
        observability.milliseconds(names.OUTBOX_LAG_MS, max(0.0, lag_ms))
    return {"event_id": event.id, "event_type": event.event_type}


handler = _notify


@step("ParkNotification")
def _park_notification(data: StepInput) -> StepResult:
    _, event = _event(data)
    with deps.engine().begin() as conn:
        _finish(conn, data)
        record_attempt(conn, event_id=event.id)
    return {"event_id": event.id, "parked": event.sent_at is None}


park_notification = _park_notification
