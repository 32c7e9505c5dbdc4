"""The project's AWS resources, described once.

Production finds them by these names (from settings); the local stack creates them from the very same description,
so a name can never differ between the code that provisions and the code that uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from core import limits
from core.aws import client
from core.settings import Settings


@dataclass(frozen=True)
class Table:
    name: str
    hash_key: str
    ttl_attribute: str | None


def tables(settings: Settings) -> list[Table]:
    return [
        Table(settings.idempotency_table, hash_key="pk", ttl_attribute="expires_at"),
        Table(settings.worker_slots_table, hash_key="slot", ttl_attribute=None),
    ]


def queue_url(sqs: Any, name: str) -> str:
    """The URL of a queue found by name, as every consumer and producer looks it up."""
    return str(sqs.get_queue_url(QueueName=name)["QueueUrl"])


def topic_arn(sns: Any, name: str) -> str:
    """SNS CreateTopic is idempotent and returns the ARN of an existing topic: it is the lookup by name."""
    return str(sns.create_topic(Name=name)["TopicArn"])


def create_tables(settings: Settings) -> list[str]:
    """Create the DynamoDB tables that do not exist yet (TTL enabled where the table has one); their names."""
    dynamodb = client("dynamodb", settings)
    for table in tables(settings):
        try:
            dynamodb.create_table(
                TableName=table.name,
                AttributeDefinitions=[{"AttributeName": table.hash_key, "AttributeType": "S"}],
                KeySchema=[{"AttributeName": table.hash_key, "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
            )
            dynamodb.get_waiter("table_exists").wait(TableName=table.name, WaiterConfig={"Delay": 1})
            if table.ttl_attribute is not None:
                dynamodb.update_time_to_live(
                    TableName=table.name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
                )
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceInUseException":
                raise
    return [table.name for table in tables(settings)]


def provision(settings: Settings) -> dict[str, str]:
    """Create every table, queue, topic and bus that does not exist yet; return what was found or made."""
    made = {f"table:{name}": name for name in create_tables(settings)}

    sqs = client("sqs", settings)
    dlq_url = sqs.create_queue(QueueName=settings.notifications_dlq, Attributes={"FifoQueue": "true"})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(limits.NOTIFICATIONS_MAX_RECEIVES)})
    sqs.create_queue(
        QueueName=settings.notifications_queue,
        Attributes={"FifoQueue": "true", "RedrivePolicy": redrive,
                    "VisibilityTimeout": str(limits.NOTIFICATIONS_VISIBILITY_TIMEOUT_S)},
    )
    made[f"queue:{settings.notifications_queue}"] = queue_url(sqs, settings.notifications_queue)
    made[f"queue:{settings.notifications_dlq}"] = dlq_url

    made[f"topic:{settings.notifications_topic}"] = topic_arn(client("sns", settings), settings.notifications_topic)
    made[f"topic:{settings.recon_alerts_topic}"] = topic_arn(client("sns", settings), settings.recon_alerts_topic)

    events = client("events", settings)
    try:
        events.create_event_bus(Name=settings.event_bus)
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceAlreadyExistsException":
            raise
    made[f"bus:{settings.event_bus}"] = settings.event_bus
    return made
