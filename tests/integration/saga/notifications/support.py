"""Helpers of the notification tests: outbox rows of real payments, the emulator's queues read back."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import Engine, text
from ulid import ULID

from store.outbox import OutboxEvent, event_by_id, insert_event
from tests.integration.store.support import make_merchant, make_payment


def outbox_event(engine: Engine, *, event_type: str = "payment.succeeded", age_ms: int = 0,
                 fraud_score: int | None = None, **data: Any) -> OutboxEvent:
    """A payment with one outbox row written `age_ms` ago."""
    with engine.begin() as conn:
        merchant_id = make_merchant(conn)
        payment_id = make_payment(conn, merchant_id=merchant_id, amount_minor=1999, currency="EUR")
        if fraud_score is not None:
            conn.execute(text("UPDATE payments SET fraud_score = :s WHERE id = :id"),
                         {"s": fraud_score, "id": payment_id})
        event_id = str(ULID())
        insert_event(conn, event_id=event_id, payment_id=payment_id, event_type=event_type,
                     payload={"type": event_type, "payment_id": str(payment_id), "merchant_id": merchant_id,
                              "amount_minor": 1999, "currency": "EUR", **data})
        conn.execute(text("UPDATE outbox SET created_at = now() - make_interval(secs => :s) WHERE id = :id"),
                     {"s": age_ms / 1000, "id": event_id})
        event = event_by_id(conn, event_id=event_id)
    assert event is not None
    return event


def sink_queue(sqs: Any, name: str) -> tuple[str, str]:
    """A standard queue to read what a topic or a rule sends: (url, arn)."""
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def drain(sqs: Any, url: str, *, expect: int = 1, timeout_s: float = 5.0, settle_s: float = 0.3) -> list[str]:
    """The bodies in the queue (received, then deleted): waits until `expect` arrived, then `settle_s` more."""
    return [m["Body"] for m in drain_messages(sqs, url, expect=expect, timeout_s=timeout_s, settle_s=settle_s)]


def drain_messages(sqs: Any, url: str, *, expect: int = 1, timeout_s: float = 5.0,
                   settle_s: float = 0.3) -> list[dict[str, Any]]:
    """The messages in the queue, with their attributes (received, then deleted), as `drain` waits for them."""
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    settled_at: float | None = None
    while True:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                           AttributeNames=["All"], MessageAttributeNames=["All"]
                                           ).get("Messages", []):
            messages.append(message)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        now = time.monotonic()
        if settled_at is None and len(messages) >= expect:
            settled_at = now + settle_s
        if (settled_at is not None and now >= settled_at) or now >= deadline:
            return messages
        time.sleep(0.05)


def parsed(bodies: list[str]) -> list[dict[str, Any]]:
    return [json.loads(b) for b in bodies]
