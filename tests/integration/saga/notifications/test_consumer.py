"""The notifications consumer: every event to every target (SNS, EventBridge, the webhook hand-off), idempotent on
retry; a poison message reaches the DLQ after the bounded receives and `dlq redrive` brings it back."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from core import event_rules, limits
from core.aws import client
from core.aws_resources import queue_url
from core.settings import Settings
from local.notification_worker import Worker
from local.notifications_dlq import peek, redrive
from saga.notifications.consumer import (
    NotInDatabase,
    PoisonMessage,
    TargetRefused,
    Targets,
    handler,
    process,
    targets_for,
)
from saga.notifications.webhooks import create_endpoint
from store import webhooks as webhook_records
from store.outbox import event_message
from tests.integration.saga.notifications.support import drain, drain_messages, outbox_event, parsed, sink_queue


@pytest.fixture
def targets(app_settings: Settings) -> Targets:
    return targets_for(app_settings)


@pytest.fixture
def sqs(app_settings: Settings) -> Any:
    return client("sqs", app_settings)


def _tap_topic(sqs: Any, targets: Targets) -> str:
    url, arn = sink_queue(sqs, "tap-topic")
    targets.sns.subscribe(TopicArn=targets.topic_arn, Protocol="sqs", Endpoint=arn,
                          Attributes={"RawMessageDelivery": "true"})
    return url


def _tap_bus(sqs: Any, targets: Targets) -> str:
    url, arn = sink_queue(sqs, "tap-bus")
    targets.events.put_rule(Name="tap-all", EventBusName=targets.event_bus,
                            EventPattern=json.dumps({"source": [event_rules.SOURCE]}))
    targets.events.put_targets(Rule="tap-all", EventBusName=targets.event_bus, Targets=[{"Id": "tap", "Arn": arn}])
    return url


def test_an_event_reaches_every_target_and_a_retry_changes_nothing_but_duplicates_with_the_same_id(
        targets: Targets, sqs: Any) -> None:
    topic_tap, bus_tap = _tap_topic(sqs, targets), _tap_bus(sqs, targets)
    event = outbox_event(targets.engine, fraud_score=65, captured_amount_minor=1999)
    with targets.engine.begin() as conn:
        endpoint, _ = create_endpoint(conn, merchant_id=event.payload["merchant_id"], url="http://127.0.0.1:9/hook",
                                      allow_loopback=True)

    assert process(targets, event_message(event)) == event.id
    assert process(targets, event_message(event)) == event.id  # a redelivery: every target again, idempotently

    # Webhooks: one durable pending delivery per endpoint, however many times the event came.
    with targets.engine.connect() as conn:
        deliveries = webhook_records.deliveries_of_event(conn, event_id=event.id)
    assert [d.endpoint_id for d in deliveries] == [endpoint.id]

    # SNS: the event's one JSON form (the outbox row's bytes), with its type as a message attribute.
    published = drain_messages(sqs, topic_tap, expect=2)
    assert [m["Body"] for m in published] == [event_message(event)] * 2
    assert {m["MessageAttributes"]["type"]["StringValue"] for m in published} == {"payment.succeeded"}

    # EventBridge: the event under its own detail-type, and the high-risk event carrying the score (score 65 is in
    # the review band); twice each, with the same id.
    put = parsed(drain(sqs, bus_tap, expect=4))
    assert sorted(p["detail-type"] for p in put) == ["payment.high_risk"] * 2 + ["payment.succeeded"] * 2
    assert {p["source"] for p in put} == {event_rules.SOURCE}
    own = [p["detail"] for p in put if p["detail-type"] == "payment.succeeded"]
    risky = [p["detail"] for p in put if p["detail-type"] == "payment.high_risk"]
    assert own == [json.loads(event_message(event))] * 2
    assert {d["id"] for d in risky} == {event.id} and {d["data"]["fraud_score"] for d in risky} == {65}


def test_a_low_risk_event_has_no_high_risk_announcement(targets: Targets, sqs: Any) -> None:
    bus_tap = _tap_bus(sqs, targets)
    process(targets, event_message(outbox_event(targets.engine, fraud_score=10)))
    assert [p["detail-type"] for p in parsed(drain(sqs, bus_tap, expect=1))] == ["payment.succeeded"]


def test_nothing_is_announced_that_the_database_does_not_hold(targets: Targets, sqs: Any) -> None:
    topic_tap = _tap_topic(sqs, targets)
    event = outbox_event(targets.engine)
    with pytest.raises(PoisonMessage):
        process(targets, "not json")
    with pytest.raises(PoisonMessage):
        process(targets, json.dumps({"type": "payment.succeeded"}))
    with pytest.raises(NotInDatabase):
        process(targets, json.dumps({"id": "01J00000000000000000000000", "type": "payment.succeeded", "data": {}}))
    with pytest.raises(PoisonMessage):  # the message says another type than the row holds
        process(targets, json.dumps({"id": event.id, "type": "payment.failed"}))
    # A message in another form still announces the row's own bytes.
    process(targets, json.dumps({"id": event.id, "surprise": True}))
    assert drain(sqs, topic_tap, expect=1) == [event_message(event)]


def test_a_refused_put_events_fails_the_record(targets: Targets) -> None:
    class Refusing:
        def put_events(self, **_: Any) -> dict[str, Any]:
            return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "down"}]}

    refusing = dataclasses.replace(targets, events=Refusing())
    with pytest.raises(TargetRefused):
        process(refusing, event_message(outbox_event(targets.engine)))


def test_the_worker_deletes_what_succeeded_and_a_poison_message_reaches_the_dlq_then_redrives(
        app_settings: Settings, sqs: Any) -> None:
    worker = Worker.make(app_settings, retry_after_s=0)
    good = outbox_event(worker.targets.engine)
    sqs.send_message(QueueUrl=worker.queue, MessageBody=event_message(good), MessageGroupId=str(good.payment_id),
                     MessageDeduplicationId=good.id)
    sqs.send_message(QueueUrl=worker.queue, MessageBody="{not an event", MessageGroupId="poison",
                     MessageDeduplicationId="poison-1")

    assert worker.poll_once(wait_s=0) == (1, 1)
    for _ in range(limits.NOTIFICATIONS_MAX_RECEIVES * 2):  # handed back, failed again, until SQS gives up on it
        worker.poll_once(wait_s=0)
    dlq = queue_url(sqs, app_settings.notifications_dlq)
    attributes = sqs.get_queue_attributes(QueueUrl=worker.queue, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0" and attributes["ApproximateNumberOfMessagesNotVisible"] \
        == "0"

    listed = peek(sqs, app_settings)
    assert [(d.body, d.event_id) for d in listed] == [("{not an event", None)]
    assert [d.body for d in peek(sqs, app_settings)] == ["{not an event"]  # a peek leaves it there
    assert listed[0].receives >= 1

    moved = redrive(sqs, app_settings)
    assert [d.body for d in moved] == ["{not an event"]
    assert peek(sqs, app_settings) == []
    back = sqs.receive_message(QueueUrl=worker.queue, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                               AttributeNames=["All"]).get("Messages", [])
    assert [m["Body"] for m in back] == ["{not an event"] and back[0]["Attributes"]["MessageGroupId"] == "poison"
    assert dlq


def _record(message_id: str, body: str, group: str) -> dict[str, Any]:
    return {"messageId": message_id, "receiptHandle": f"rh-{message_id}", "body": body,
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1764756000000", "SenderId": "x",
                           "ApproximateFirstReceiveTimestamp": "1764756000000", "MessageGroupId": group,
                           "MessageDeduplicationId": message_id, "SequenceNumber": "1"},
            "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:paysaga-notifications.fifo",
            "awsRegion": "eu-west-1"}


def test_the_lambda_handler_reports_the_failed_records_and_the_rest_of_their_group(
        app_settings: Settings, sqs: Any) -> None:
    topic_tap = _tap_topic(sqs, targets_for(app_settings))
    engine = targets_for(app_settings).engine
    ok, later, other = outbox_event(engine), outbox_event(engine), outbox_event(engine)
    batch = {"Records": [_record("m1", event_message(ok), "g1"), _record("m2", "poison", "g2"),
                         _record("m3", event_message(later), "g2"), _record("m4", event_message(other), "g3")]}
    answer = handler(batch, None)
    assert sorted(f["itemIdentifier"] for f in answer["batchItemFailures"]) == ["m2", "m3"]
    assert sorted(drain(sqs, topic_tap, expect=2)) == sorted([event_message(ok), event_message(other)])
