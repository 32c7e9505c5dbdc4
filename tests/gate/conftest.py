"""DynamoDB-only settings: these tests need the emulator, not PostgreSQL or Redis."""

from __future__ import annotations

import pytest

from core.aws import client
from core.aws_resources import tables
from core.settings import Settings


@pytest.fixture
def dynamo_settings(aws_env: str) -> Settings:
    """Settings pointing at the reset emulator, with the DynamoDB tables of core.aws_resources created.

    DATABASE_URL and REDIS_URL are required by Settings but never used here; placeholders keep PostgreSQL and
    Redis out of these tests. Only the tables are made (not the queues, topics and bus of `provision`): each
    boto3 client costs ~50 ms to build and these tests need none of the others.
    """
    current = Settings(  # type: ignore[call-arg]
        DATABASE_URL="postgresql://unused@127.0.0.1:1/unused",
        REDIS_URL="redis://127.0.0.1:1/0",
        AWS_ENDPOINT_URL=aws_env,
    )
    dynamodb = client("dynamodb", current)
    for table in tables(current):
        dynamodb.create_table(
            TableName=table.name,
            AttributeDefinitions=[{"AttributeName": table.hash_key, "AttributeType": "S"}],
            KeySchema=[{"AttributeName": table.hash_key, "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
    return current
