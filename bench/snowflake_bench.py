"""Snowflake minting cost next to the other ID makers, measured side by side in one run.

    .venv/bin/python bench/snowflake_bench.py [ids_per_round]

The slot is claimed in an in-process moto (minting itself never touches DynamoDB; only lease renewals do, once
per heartbeat interval). Prints the median ns per ID over several rounds and the ratio to uuid4.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable

import boto3
from moto import mock_aws
from ulid import ULID

from saga.snowflake import SnowflakeGenerator
from saga.worker_slots import WorkerSlots

ROUNDS = 7
TABLE = "bench-worker-slots"


def per_id_ns(make: Callable[[], object], count: int) -> float:
    started = time.perf_counter_ns()
    for _ in range(count):
        make()
    return (time.perf_counter_ns() - started) / count


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="eu-west-1")
        dynamodb.create_table(
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": "slot", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "slot", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        generator = SnowflakeGenerator(WorkerSlots(dynamodb, TABLE), heartbeat_interval_ms=None).start()
        makers: dict[str, Callable[[], object]] = {
            "snowflake next_id": generator.next_id,
            "uuid.uuid4": uuid.uuid4,
            "ulid.ULID": ULID,
            "time.time_ns (floor)": time.time_ns,
        }
        samples: dict[str, list[float]] = {name: [] for name in makers}
        for _ in range(ROUNDS):  # interleaved, so drift hits every maker alike
            for name, make in makers.items():
                samples[name].append(per_id_ns(make, count))
        generator.close()
    baseline = statistics.median(samples["uuid.uuid4"])
    print(f"{count} IDs per round, {ROUNDS} rounds, median ns per ID (ratio to uuid4):")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"  {name:22s} {median:9.0f} ns   {median / baseline:5.2f}x   ({1e9 / median / 1e6:.2f} M IDs/s)")


if __name__ == "__main__":
    main()
