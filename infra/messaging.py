"""Notifications: the SQS FIFO queue (+ DLQ) NotifyMerchant and the outbox relay publish to and the notifications
consumer reads (infra/notifications.py); the fan-out SNS topic and EventBridge bus."""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from core import limits
from infra.names import ResourceNames

# Same shape as core/aws_resources.provision: 5 receives, then the DLQ.
MAX_RECEIVE_COUNT: Final[int] = limits.NOTIFICATIONS_MAX_RECEIVES
# The consumer's Lambda timeout (saga.notifications.consumer.handler, infra/notifications.py).
CONSUMER_TIMEOUT_S: Final[int] = limits.NOTIFICATIONS_CONSUMER_TIMEOUT_S
# AWS's guidance for a queue a Lambda event source reads: a visibility timeout of at least six times the function's
# timeout, so the poller's own retries of a throttled or failed invocation happen before the batch turns visible again
# (limits.NOTIFICATIONS_VISIBILITY_TIMEOUT_S is the local queue's, read by the local worker, which has no poller).
VISIBILITY_TIMEOUT_S: Final[int] = 6 * CONSUMER_TIMEOUT_S
# A message its consumer keeps failing is dead-lettered after this long at most (tests/unit/infra checks the oldest
# message alarm lies beyond it: an old message is then one no consumer takes, not a poison one).
DEAD_LETTER_AFTER_S: Final[int] = MAX_RECEIVE_COUNT * VISIBILITY_TIMEOUT_S


class Messaging(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, names: ResourceNames, topic_key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.dlq = sqs.Queue(
            self, "NotificationsDlq",
            queue_name=names.notifications_dlq,
            fifo=True,
            retention_period=Duration.days(14),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
        )
        NagSuppressions.add_resource_suppressions(self.dlq, [NagPackSuppression(
            id="Serverless-SQSRedrivePolicy",
            reason="this is the notifications queue's dead-letter queue: what lands here stays for an engineer "
                   "(DlqNotEmpty alarms), a redrive of its own would only hide it")])
        self.queue = sqs.Queue(
            self, "Notifications",
            queue_name=names.notifications_queue,
            fifo=True,
            content_based_deduplication=False,  # the producer sets the event's ULID as deduplication id
            visibility_timeout=Duration.seconds(VISIBILITY_TIMEOUT_S),
            retention_period=Duration.days(4),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=MAX_RECEIVE_COUNT),
        )
        # Payment events carry merchant and payment data: encrypted with the stack's messages key.
        self.topic = sns.Topic(self, "PaymentEvents", topic_name=names.notifications_topic, enforce_ssl=True,
                               master_key=topic_key)
        self.bus = events.EventBus(self, "Payments", event_bus_name=names.event_bus)
