"""Each function is granted exactly the calls its code makes, written as explicit statements (never a CDK `grant_*`
helper, which adds actions the code never calls): the list below is checked against the synthesized roles by
tests/unit/infra/test_permissions.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_

# The start function's idempotency gate (saga/idempotency.py: put_item, update_item, delete_item, get_item): item by
# item, never Scan (a scan would read every merchant's keys and stored answers).
DYNAMODB_ITEM_ACTIONS: Final[tuple[str, ...]] = (
    "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
# Its worker slots (saga/worker_slots.py): the same four, and the one consistent Scan its claim falls back to after
# 16 conditional puts in a row meet live leases (rare, but then the only way to find a free slot). The table holds at
# most 1,024 slot leases and nothing of a merchant's.
WORKER_SLOT_ACTIONS: Final[tuple[str, ...]] = (*DYNAMODB_ITEM_ACTIONS, "dynamodb:Scan")
# core/db.py (Powertools' SecretsProvider) and steps/gateway/credentials.py: get_secret_value only.
SECRET_READ_ACTIONS: Final[tuple[str, ...]] = ("secretsmanager:GetSecretValue",)
# steps/notify.py and saga/notifications/relay.py: the queue's URL by name (core/aws_resources.queue_url), then
# send_message (send_message_batch is authorized as SendMessage).
QUEUE_SEND_ACTIONS: Final[tuple[str, ...]] = ("sqs:GetQueueUrl", "sqs:SendMessage")
# The notifications queue's event source (Lambda's poller, with the consumer's role): what AWS documents it needs
# (AWSLambdaSQSQueueExecutionRole's SQS actions), written out instead of CDK's grant, which adds
# ChangeMessageVisibility and GetQueueUrl the poller never calls.
QUEUE_CONSUME_ACTIONS: Final[tuple[str, ...]] = ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes")
# saga/notifications/consumer.py: the topic's ARN by name (core/aws_resources.topic_arn: CreateTopic is SNS's
# idempotent lookup, authorized on the topic's own ARN only), then publish.
TOPIC_PUBLISH_ACTIONS: Final[tuple[str, ...]] = ("sns:CreateTopic", "sns:Publish")
# Publishing to a topic encrypted with a customer managed key: SNS generates and decrypts the data key on the
# publisher's behalf (AWS's documented publisher permissions for SSE topics).
TOPIC_KEY_ACTIONS: Final[tuple[str, ...]] = ("kms:GenerateDataKey", "kms:Decrypt")
# saga/notifications/consumer.py: put_events on the payments bus.
PUT_EVENTS_ACTIONS: Final[tuple[str, ...]] = ("events:PutEvents",)
# saga/sfn.py: start_sync_execution.
START_EXECUTION_ACTIONS: Final[tuple[str, ...]] = ("states:StartSyncExecution",)
# saga/console/timeline.py (CloudWatchLogsSource): filter_log_events on an Express state machine's log group, the
# only place Step Functions keeps an Express execution's events (Express has no GetExecutionHistory). The log groups
# are encrypted with the logs key, which CloudWatch Logs uses on the reader's behalf: no kms action for the reader.
LOG_READ_ACTIONS: Final[tuple[str, ...]] = ("logs:FilterLogEvents",)
# saga/reconcile.py: get_object of the settlement report an S3 notification names (settlements/<gateway>/...).
OBJECT_READ_ACTIONS: Final[tuple[str, ...]] = ("s3:GetObject",)
# Reading an object encrypted with a customer managed key (SSE-KMS): S3 decrypts its data key on the reader's behalf.
OBJECT_KEY_ACTIONS: Final[tuple[str, ...]] = ("kms:Decrypt",)
# saga/reconcile.py: put_record_batch of the day's ledger entries on the landing stream.
LANDING_PUT_ACTIONS: Final[tuple[str, ...]] = ("firehose:PutRecordBatch",)


def allow(functions: Sequence[lambda_.IFunction], actions: Sequence[str], resources: Sequence[str], *,
          conditions: Mapping[str, Any] | None = None) -> None:
    """One statement per function: these actions on these resources (under these conditions)."""
    for function in functions:
        function.add_to_role_policy(iam.PolicyStatement(actions=list(actions), resources=list(resources),
                                                        conditions=dict(conditions) if conditions else None))
