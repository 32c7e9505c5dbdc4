"""The outbox relay: publish to the notifications queue every outbox row left unsent past a grace.

NotifyMerchant publishes a committed payment's event itself, within its Task. What it never published (it crashed
between the commit and the send, ParkNotification parked it, SQS was down) and what no step publishes (the events
saga/webhooks.py writes: payment.disputed, ...) stays unsent; this sweeper publishes it once it is older than
`limits.OUTBOX_RELAY_GRACE_MS` (so it does not race a live NotifyMerchant), then marks it sent.

At least once: a crash between the send and the mark sends the row again on the next pass. The queue is FIFO with
MessageDeduplicationId = the event's ULID, so SQS drops a resend within its 5-minute deduplication window, and the
consumer's targets are idempotent on the event id beyond it. MessageGroupId = the payment id: one payment's events
are consumed in order.

Run on a schedule: `handler` once a minute on AWS (an EventBridge rule), the local notification worker locally.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import Engine

from core import limits, observability
from core import telemetry_names as names
from core.aws import client
from core.aws_resources import queue_url
from core.db import engine as db_engine
from core.settings import settings
from store.outbox import OutboxEvent, event_message, mark_sent, record_attempt, unsent_events

__all__ = ["SQS_BATCH", "handler", "relay"]

logger = observability.logger(names.SERVICE_NOTIFICATIONS)
SQS_BATCH = 10  # SendMessageBatch's ceiling: the rows of one transaction, so its locks are held for one call


def _entry(event: OutboxEvent) -> dict[str, str]:
    return {"Id": event.id, "MessageBody": event_message(event), "MessageGroupId": str(event.payment_id),
            "MessageDeduplicationId": event.id}


def relay(engine: Engine, sqs: Any, queue: str, *, older_than_ms: int = limits.OUTBOX_RELAY_GRACE_MS,
          limit: int = limits.OUTBOX_RELAY_BATCH) -> int:
    """One pass: publish up to `limit` rows unsent for at least `older_than_ms`, oldest first; how many were
    published. Rows another relay holds are skipped (SKIP LOCKED). A pass stops at the first batch SQS refused in
    part or in whole (its rows get an attempt counted): the next pass tries them again."""
    assert older_than_ms >= 0 and limit > 0
    published = 0
    while published < limit:
        with engine.begin() as conn:  # the rows stay locked until they are marked: two relays never send one row
            events = unsent_events(conn, limit=min(SQS_BATCH, limit - published), older_than_ms=older_than_ms)
            if not events:
                break
            try:
                answer = sqs.send_message_batch(QueueUrl=queue, Entries=[_entry(e) for e in events])
            except (BotoCoreError, ClientError) as error:
                logger.warning("the outbox relay could not publish; the next pass tries again",
                               extra={"events": len(events), "error": str(error)})
                for event in events:
                    record_attempt(conn, event_id=event.id)
                break
            sent = {str(entry["Id"]) for entry in answer.get("Successful", [])}
            for event in events:
                if event.id in sent:
                    mark_sent(conn, event_id=event.id)
                    lag_ms = (datetime.now(UTC) - event.created_at).total_seconds() * 1000
                    observability.milliseconds(names.OUTBOX_LAG_MS, max(0.0, lag_ms))
                else:
                    record_attempt(conn, event_id=event.id)
            published += len(sent)
            failed = answer.get("Failed", [])
            if failed:
                logger.warning("SQS refused part of a relay batch; the next pass tries again",
                               extra={"failed": [f"{f.get('Id')}: {f.get('Code')}" for f in failed]})
                break
    if published:
        logger.info("outbox relay pass", extra={"published": published})
    return published


def handler(event: object, context: Any) -> dict[str, int]:
    """The relay on AWS: an EventBridge schedule invokes it once a minute."""
    with observability.invocation("relay", context, service=names.SERVICE_NOTIFICATIONS):
        now = settings()
        sqs = client("sqs", now)
        published = relay(db_engine(now), sqs, queue_url(sqs, now.notifications_queue))
    return {"published": published}
