"""The outbox relay publishes what NotifyMerchant never did, once, and leaves what it may still be publishing."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from core import limits
from core.aws import client
from core.aws_resources import queue_url
from core.db import engine as db_engine
from core.settings import Settings
from saga.notifications.relay import relay
from store.outbox import event_by_id, event_message
from tests.integration.saga.notifications.support import drain, outbox_event


@pytest.fixture
def engine(app_settings: Settings) -> Engine:
    return db_engine(app_settings)


@pytest.fixture
def sqs(app_settings: Settings) -> Any:
    return client("sqs", app_settings)


def _receive_all(sqs: Any, url: str) -> list[dict[str, Any]]:
    return list(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                    AttributeNames=["All"]).get("Messages", []))


def test_an_unsent_row_past_the_grace_is_published_once_and_marked(app_settings: Settings, engine: Engine,
                                                                      sqs: Any) -> None:
    url = queue_url(sqs, app_settings.notifications_queue)
    stale = outbox_event(engine, age_ms=limits.OUTBOX_RELAY_GRACE_MS + 5_000)
    fresh = outbox_event(engine, age_ms=0)  # NotifyMerchant may be publishing it right now

    assert relay(engine, sqs, url, older_than_ms=limits.OUTBOX_RELAY_GRACE_MS) == 1
    assert relay(engine, sqs, url, older_than_ms=limits.OUTBOX_RELAY_GRACE_MS) == 0  # marked: not again

    messages = _receive_all(sqs, url)
    assert [m["Body"] for m in messages] == [event_message(stale)]
    assert messages[0]["Attributes"]["MessageGroupId"] == str(stale.payment_id)
    assert messages[0]["Attributes"]["MessageDeduplicationId"] == stale.id
    with engine.connect() as conn:
        marked, left = event_by_id(conn, event_id=stale.id), event_by_id(conn, event_id=fresh.id)
    assert marked is not None and marked.sent_at is not None
    assert left is not None and left.sent_at is None


def test_a_relay_pass_is_bounded_and_a_failed_send_is_counted_and_tried_again(
        app_settings: Settings, engine: Engine, sqs: Any) -> None:
    url = queue_url(sqs, app_settings.notifications_queue)
    events = [outbox_event(engine, age_ms=120_000, event_type="payment.disputed") for _ in range(12)]
    assert relay(engine, sqs, "https://sqs.eu-west-1.amazonaws.com/000000000000/no-such-queue.fifo",
                 older_than_ms=0) == 0
    with engine.connect() as conn:
        first = event_by_id(conn, event_id=events[0].id)
    assert first is not None and first.attempts == 1 and first.sent_at is None

    assert relay(engine, sqs, url, older_than_ms=0, limit=11) == 11  # more than one SQS batch, within the limit
    assert relay(engine, sqs, url, older_than_ms=0) == 1
    bodies = drain(sqs, url, expect=12)
    assert sorted(bodies) == sorted(event_message(e) for e in events)
