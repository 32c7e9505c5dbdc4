"""Helpers for the Snowflake tests: a steppable clock and direct access to the worker_slots table."""

from __future__ import annotations

import math
from typing import Any

from core.aws import client
from core.settings import Settings
from saga.snowflake import EPOCH_MS
from saga.worker_slots import SLOT_COUNT, WorkerSlots

# Some day well inside the 41-bit range, so tests never depend on today's date.
T0_MS = EPOCH_MS + 86_400_000 * 30


class SteppedClock:
    """A clock the test moves; sleep() advances it, as time would, and records what was asked."""

    def __init__(self, now_ms: int = T0_MS) -> None:
        self.now_ms = now_ms
        self.sleeps_ms: list[float] = []

    def __call__(self) -> int:
        return self.now_ms

    def sleep(self, duration_ms: float) -> None:
        self.sleeps_ms.append(duration_ms)
        self.now_ms += math.ceil(duration_ms)


def dynamodb(settings: Settings) -> Any:
    return client("dynamodb", settings)


def slots(settings: Settings, clock: SteppedClock, **kwargs: Any) -> WorkerSlots:
    return WorkerSlots(dynamodb(settings), settings.worker_slots_table, clock_ms=clock, **kwargs)


def fill_slots(settings: Settings, expires_ms: int, except_slots: set[int] | None = None) -> None:
    """Lease every slot (but the excepted ones) to a foreign owner until expires_ms."""
    ddb = dynamodb(settings)
    items = [
        {"PutRequest": {"Item": {
            "slot": {"S": str(slot)}, "owner": {"S": "someone-else"},
            "lease_expires_ms": {"N": str(expires_ms)}, "claimed_ms": {"N": "0"}, "holder": {"S": "test"},
        }}}
        for slot in range(SLOT_COUNT)
        if slot not in (except_slots or set())
    ]
    for start in range(0, len(items), 25):
        ddb.batch_write_item(RequestItems={settings.worker_slots_table: items[start : start + 25]})
