"""The notifications-queue consumer: each event fanned out to every target, the message kept until all took it.

For each SQS record (`process`):
1. parse the body; a body that is not an event ({"id": <ULID>, ...}) is a poison message: the record fails, SQS hands
   it back up to `limits.NOTIFICATIONS_MAX_RECEIVES` times, then moves it to the DLQ (`paysaga events dlq list`);
2. load the event's outbox row by id: what is announced is what PostgreSQL holds (the row's bytes, never the
   message's), and a message whose row does not exist is refused (it fails, and so reaches the DLQ);
3. fan out, each target idempotent on the event id:
   (a) merchant webhooks: `saga.notifications.webhooks.enqueue_deliveries` writes the durable pending deliveries in
       one transaction (once committed, the webhook target took the event);
   (b) SNS: publish the event's JSON to the topic, with the message attributes `type` and `payment_id`;
   (c) EventBridge: PutEvents on the bus, Source `paysaga.payments`, DetailType the event's type, Detail the event's
       JSON; and, for a payment's outcome whose fraud score is in the review band or above, a second entry
       `payment.high_risk` carrying `data.fraud_score` (core.event_rules: the names and seed 001's rule patterns).
A record succeeds only when every target took it; otherwise it fails and SQS redelivers it later, so SNS or
EventBridge may see an event twice, with the same id and the same bytes: subscribers dedupe on `id` (on
(detail-type, id) for EventBridge).

On AWS: `handler`, an SQS event source with ReportBatchItemFailures, through Powertools' SqsFifoPartialProcessor (a
failed record fails the rest of its message group, so one payment's events stay in order). Locally:
local/notification_worker.py long-polls the emulator's queue and calls the same `process`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from sqlalchemy import Connection, Engine

from core import event_rules, limits, observability
from core import telemetry_names as names
from core.aws import client
from core.aws_resources import topic_arn
from core.db import engine as db_engine
from core.settings import Settings, settings
from saga.notifications.webhooks import enqueue_deliveries
from store.outbox import OutboxEvent, event_by_id, event_message
from store.payments import get_payment

__all__ = ["NotInDatabase", "PoisonMessage", "TargetRefused", "Targets", "entries", "handler", "process",
           "targets_for"]

logger = observability.logger(names.SERVICE_NOTIFICATIONS)

# The events that tell a payment's outcome: only these carry the high-risk announcement (a dispute later does not).
OUTCOME_EVENTS = frozenset({event_rules.PAYMENT_SUCCEEDED, event_rules.PAYMENT_FAILED, "payment.review"})

WebhookHandOff = Callable[[Connection, OutboxEvent], int]


class PoisonMessage(ValueError):
    """The message is not an event: no retry makes it one (it reaches the DLQ after the bounded receives)."""


class NotInDatabase(LookupError):
    """No outbox row holds this event: nothing is announced that the database does not hold."""


class TargetRefused(RuntimeError):
    """A target did not take the event (EventBridge's FailedEntryCount): the record fails and is redelivered."""


@dataclass(frozen=True)
class Targets:
    engine: Engine
    sns: Any
    topic_arn: str
    events: Any
    event_bus: str
    webhooks: WebhookHandOff  # saga.notifications.webhooks.enqueue_deliveries


@functools.cache
def targets_for(now: Settings) -> Targets:
    """Every target, found by name from settings (made once per process)."""
    sns = client("sns", now)
    return Targets(engine=db_engine(now), sns=sns, topic_arn=topic_arn(sns, now.notifications_topic),
                   events=client("events", now), event_bus=now.event_bus, webhooks=enqueue_deliveries)


def parse(body: str) -> tuple[str, str | None]:
    """(event id, event type if the message says one) of a message body; PoisonMessage when it is no event."""
    try:
        message = json.loads(body)
    except (TypeError, ValueError) as error:
        raise PoisonMessage(f"the message is not JSON: {error}") from error
    if not isinstance(message, dict) or not isinstance(message.get("id"), str) or not message["id"]:
        raise PoisonMessage("the message is not an event: no string `id`")
    event_type = message.get("type")
    if event_type is not None and not isinstance(event_type, str):
        raise PoisonMessage("the message's `type` is not a string")
    return message["id"], event_type


def entries(event: OutboxEvent, fraud_score: int | None, event_bus: str) -> list[dict[str, str]]:
    """The PutEvents entries of one event: its own, and the high-risk one where the payment's score calls for it."""
    own = {"Source": event_rules.SOURCE, "DetailType": event.event_type, "Detail": event_message(event),
           "EventBusName": event_bus}
    if fraud_score is None or fraud_score < event_rules.HIGH_RISK_SCORE or event.event_type not in OUTCOME_EVENTS:
        return [own]
    detail = json.loads(event_message(event))
    detail["data"] = {**detail["data"], "fraud_score": fraud_score}
    risky = {"Source": event_rules.SOURCE, "DetailType": event_rules.PAYMENT_HIGH_RISK,
             "Detail": json.dumps(detail, sort_keys=True, separators=(",", ":")), "EventBusName": event_bus}
    return [own, risky]


def process(targets: Targets, body: str) -> str:
    """Fan one message out to every target (module docstring); the event id. Raises unless every target took it."""
    event_id, said_type = parse(body)
    with targets.engine.begin() as conn:
        event = event_by_id(conn, event_id=event_id)
        if event is None:
            raise NotInDatabase(f"no outbox row holds event {event_id}: it is not announced")
        if said_type is not None and said_type != event.event_type:
            raise PoisonMessage(f"event {event_id} is a {event.event_type}, the message says {said_type}")
        payment = get_payment(conn, payment_id=event.payment_id)
        fraud_score = None if payment is None else payment.fraud_score
        targets.webhooks(conn, event)  # committed with this block: the webhook deliveries are durable
    message = event_message(event)
    with observability.correlated(event.payment_id):
        targets.sns.publish(TopicArn=targets.topic_arn, Message=message, MessageAttributes={
            "type": {"DataType": "String", "StringValue": event.event_type},
            "payment_id": {"DataType": "String", "StringValue": str(event.payment_id)},
        })
        answer = targets.events.put_events(Entries=entries(event, fraud_score, targets.event_bus))
        if answer.get("FailedEntryCount", 0):
            failed = [f"{e.get('ErrorCode')}: {e.get('ErrorMessage')}" for e in answer.get("Entries", [])
                      if e.get("ErrorCode")]
            raise TargetRefused(f"EventBridge refused event {event.id}: {failed}")
    return event.id


def _record(targets: Targets, record: SQSRecord) -> str:
    try:
        return process(targets, record.body)
    except Exception as error:
        logger.warning("a notification was not delivered to every target; SQS hands it back",
                       extra={"message_id": record.message_id, "error": f"{type(error).__name__}: {error}",
                              "receive_count": record.attributes.approximate_receive_count})
        raise


_processor = SqsFifoPartialProcessor(skip_group_on_error=True)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The consumer on AWS: the queue's event source (ReportBatchItemFailures) invokes it with a batch; the records
    that failed (and the rest of their message groups) are reported back, the others are deleted by Lambda."""
    assert limits.NOTIFICATIONS_CONSUMER_TIMEOUT_S < limits.NOTIFICATIONS_VISIBILITY_TIMEOUT_S
    with observability.invocation("consume", context, service=names.SERVICE_NOTIFICATIONS):
        targets = targets_for(settings())
        return dict(process_partial_response(event=event, record_handler=lambda record: _record(targets, record),
                                             processor=_processor, context=context))
