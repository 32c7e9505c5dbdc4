"""A cleanly stopped API server gives its Snowflake worker slot back instead of letting the lease run out."""

from __future__ import annotations

import boto3

from local.testing.live import LiveStack
from tests.e2e.saga_support import pay


def leased_slots(live: LiveStack) -> set[str]:
    dynamodb = boto3.client("dynamodb", endpoint_url=live.urls["aws"], region_name="eu-west-1",
                            aws_access_key_id="local", aws_secret_access_key="local")
    items = dynamodb.scan(TableName="paysaga-worker-slots", ConsistentRead=True)["Items"]
    return {item["slot"]["S"] for item in items}


def test_restart_releases_the_slot_the_server_held(live: LiveStack) -> None:
    _, api_key = live.new_merchant()
    assert pay(live, api_key).status_code == 201  # the server has minted, so it holds a slot
    before = leased_slots(live)
    live.restart_api()
    after = leased_slots(live)
    assert len(after) == len(before) - 1, (before, after)
    assert pay(live, api_key).status_code == 201
    assert len(leased_slots(live)) == len(before)
