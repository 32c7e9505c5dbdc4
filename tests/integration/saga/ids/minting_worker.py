"""Runs in a spawned OS process: mints Snowflake IDs through the real moto server, churning worker slots."""

from __future__ import annotations

import multiprocessing.synchronize
from array import array
from multiprocessing.queues import Queue
from typing import Any

from core.aws import client
from core.settings import Settings
from saga.snowflake import SnowflakeGenerator
from saga.worker_slots import WorkerSlots

LEASE_MS = 2_000
MARGIN_MS = 500
HEARTBEAT_MS = 200
BARRIER_TIMEOUT_S = 60.0


def _generator(dynamodb: Any, settings: Settings) -> SnowflakeGenerator:
    # Every process starts probing at slot 0, so claims contend on the same few slots.
    slots = WorkerSlots(dynamodb, settings.worker_slots_table, lease_ms=LEASE_MS, start_slot=0)
    return SnowflakeGenerator(slots, safety_margin_ms=MARGIN_MS, heartbeat_interval_ms=HEARTBEAT_MS).start()


def mint(
    settings: Settings,
    count: int,
    churn_every: int,
    barrier: multiprocessing.synchronize.Barrier,
    results: Queue[tuple[bytes, list[int]]],
) -> None:
    """Mint `count` IDs; every `churn_every` IDs claim a fresh slot, then release the old one to the others."""
    dynamodb = client("dynamodb", settings)
    barrier.wait(BARRIER_TIMEOUT_S)
    minted = array("q")
    generator = _generator(dynamodb, settings)
    slots_used = [generator.slot or 0]
    for index in range(count):
        if index and index % churn_every == 0:
            successor = _generator(dynamodb, settings)
            generator.close()
            generator = successor
            slots_used.append(generator.slot or 0)
        minted.append(generator.next_id())
    generator.close()
    results.put((minted.tobytes(), slots_used))
