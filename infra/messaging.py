"""Notifications: the SQS FIFO queue (+ DLQ) NotifyMerchant publishes to; the fan-out SNS topic and EventBridge bus."""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra.names import ResourceNames

# Same shape as core/aws_resources.provision: 5 receives, then the DLQ.
MAX_RECEIVE_COUNT: Final[int] = 5


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
            visibility_timeout=Duration.seconds(30),
            retention_period=Duration.days(4),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.dlq, max_receive_count=MAX_RECEIVE_COUNT),
        )
        # Payment events carry merchant and payment data: encrypted with the stack's messages key.
        self.topic = sns.Topic(self, "PaymentEvents", topic_name=names.notifications_topic, enforce_ssl=True,
                               master_key=topic_key)
        self.bus = events.EventBus(self, "Payments", event_bus_name=names.event_bus)
