"""Each function is granted exactly the calls its code makes, written as explicit statements (never a CDK `grant_*`
helper, which adds actions the code never calls): the list below is checked against the synthesized roles by
tests/unit/infra/test_permissions.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

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
# steps/notify.py: the queue's URL by name (core/aws_resources.queue_url), then send_message.
QUEUE_SEND_ACTIONS: Final[tuple[str, ...]] = ("sqs:GetQueueUrl", "sqs:SendMessage")
# saga/sfn.py: start_sync_execution.
START_EXECUTION_ACTIONS: Final[tuple[str, ...]] = ("states:StartSyncExecution",)


def allow(functions: Sequence[lambda_.IFunction], actions: Sequence[str], resources: Sequence[str]) -> None:
    """One statement per function: these actions on these resources."""
    for function in functions:
        function.add_to_role_policy(iam.PolicyStatement(actions=list(actions), resources=list(resources)))
