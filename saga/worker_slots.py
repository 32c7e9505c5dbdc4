"""Snowflake worker slots leased in DynamoDB (DESIGN 5).

One item per slot in the worker_slots table (hash key `slot`, the slot number as a string). A claim is a
conditional PutItem that succeeds only on a free or lapsed slot; each claim carries a fresh ULID owner token,
so a renewal or a release by anyone but the current owner fails its condition. The expiry stored in DynamoDB
only ever grows while one owner holds the slot, so the deadline a holder keeps locally is never later than the
stored one.
"""

from __future__ import annotations

import os
import random
import socket
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError
from ulid import ULID

from core.clock import ClockMs, wall_clock_ms

SLOT_BITS = 10
SLOT_COUNT = 1 << SLOT_BITS  # 1024
DEFAULT_LEASE_MS = 30_000
# Conditional puts tried from the random start before falling back to one scan of the whole table.
DEFAULT_PROBE_LIMIT = 16
# A scan of 1024 small items is a page or two; the bound only guards against a runaway pagination loop.
MAX_SCAN_PAGES = 64



class WorkerSlotsExhaustedError(RuntimeError):
    """Every one of the 1024 worker slots is leased by a live owner."""


@dataclass(frozen=True, slots=True)
class Lease:
    """A slot held by this process.

    expires_ms: the expiry this owner wrote (computed from its clock before the write), so never later than
    the stored one. floor_ms: the clock read after the claim succeeded; earlier owners minted only before it.
    """

    slot: int
    owner: str
    expires_ms: int
    floor_ms: int


def _is_conditional_failure(error: ClientError) -> bool:
    return bool(error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


class WorkerSlots:
    """Claims, renews and releases worker slots in one DynamoDB table."""

    def __init__(
        self,
        dynamodb: Any,
        table: str,
        *,
        lease_ms: int = DEFAULT_LEASE_MS,
        probe_limit: int = DEFAULT_PROBE_LIMIT,
        clock_ms: ClockMs = wall_clock_ms,
        rng: random.Random | None = None,
        start_slot: int | None = None,
    ) -> None:
        assert lease_ms > 0
        assert 1 <= probe_limit <= SLOT_COUNT
        assert start_slot is None or 0 <= start_slot < SLOT_COUNT
        self._dynamodb = dynamodb
        self._table = table
        self.lease_ms = lease_ms
        self._probe_limit = probe_limit
        self._clock_ms = clock_ms
        self._rng = rng if rng is not None else random.Random()  # noqa: S311  # spreading load, not secrecy
        self._start_slot = start_slot
        self._holder = f"{socket.gethostname()}:{os.getpid()}"

    # -- claim -----------------------------------------------------------------------------------------------

    def claim(self) -> Lease:
        """Lease a free or lapsed slot: probe from a random start, then scan; raise when all 1024 are held."""
        start = self._start_slot if self._start_slot is not None else self._rng.randrange(SLOT_COUNT)
        for offset in range(self._probe_limit):
            lease = self.try_claim((start + offset) % SLOT_COUNT)
            if lease is not None:
                return lease
        candidates = self._claimable_slots()
        self._rng.shuffle(candidates)
        for slot in candidates:  # at most SLOT_COUNT attempts
            lease = self.try_claim(slot)
            if lease is not None:
                return lease
        raise WorkerSlotsExhaustedError(
            f"all {SLOT_COUNT} worker slots in DynamoDB table {self._table!r} are leased by live owners "
            f"(lease {self.lease_ms} ms); no Snowflake ID can be minted until one is released or lapses"
        )

    def try_claim(self, slot: int) -> Lease | None:
        """One conditional PutItem on one slot; None when a live owner holds it."""
        assert 0 <= slot < SLOT_COUNT
        owner = str(ULID())
        now_ms = self._clock_ms()
        expires_ms = now_ms + self.lease_ms
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item={
                    "slot": {"S": str(slot)},
                    "owner": {"S": owner},
                    "lease_expires_ms": {"N": str(expires_ms)},
                    "claimed_ms": {"N": str(now_ms)},
                    "holder": {"S": self._holder},
                },
                ConditionExpression="attribute_not_exists(#slot) OR lease_expires_ms < :now",
                ExpressionAttributeNames={"#slot": "slot"},
                ExpressionAttributeValues={":now": {"N": str(now_ms)}},
            )
        except ClientError as error:
            if _is_conditional_failure(error):
                return None
            raise
        # Read after the write landed: a previous owner that released (deleted) did so only once its clock had
        # passed its last minted millisecond, and one whose lease lapsed stopped minting before `now_ms`.
        return Lease(slot=slot, owner=owner, expires_ms=expires_ms, floor_ms=self._clock_ms())

    def _claimable_slots(self) -> list[int]:
        """Slots with no item or a lapsed lease, from one consistent scan."""
        now_ms = self._clock_ms()
        held: set[int] = set()
        request: dict[str, Any] = {
            "TableName": self._table,
            "ConsistentRead": True,
            "ProjectionExpression": "#slot, lease_expires_ms",
            "ExpressionAttributeNames": {"#slot": "slot"},
        }
        for _ in range(MAX_SCAN_PAGES):
            page = self._dynamodb.scan(**request)
            for item in page.get("Items", []):
                if int(item["lease_expires_ms"]["N"]) >= now_ms:
                    held.add(int(item["slot"]["S"]))
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return [slot for slot in range(SLOT_COUNT) if slot not in held]

    # -- renew / release -------------------------------------------------------------------------------------

    def renew(self, lease: Lease) -> Lease | None:
        """Extend the lease while we still own the slot; None when it was taken over (or released)."""
        expires_ms = self._clock_ms() + self.lease_ms
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key={"slot": {"S": str(lease.slot)}},
                UpdateExpression="SET lease_expires_ms = :expires",
                # The stored expiry only grows: a slow renewal landing after a later one cannot shorten it.
                ConditionExpression="#owner = :owner AND lease_expires_ms < :expires",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": lease.owner}, ":expires": {"N": str(expires_ms)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if not _is_conditional_failure(error):
                raise
            old: dict[str, Any] | None = error.response.get("Item")  # type: ignore[assignment]
            if old is None or old.get("owner", {}).get("S") != lease.owner:
                return None
            # Still ours; a concurrent renewal of ours already stored a later expiry.
            expires_ms = max(lease.expires_ms, int(old["lease_expires_ms"]["N"]))
        return Lease(slot=lease.slot, owner=lease.owner, expires_ms=expires_ms, floor_ms=lease.floor_ms)

    def release(self, lease: Lease) -> bool:
        """Delete the slot's item if we still own it; False when someone else holds it by now."""
        try:
            self._dynamodb.delete_item(
                TableName=self._table,
                Key={"slot": {"S": str(lease.slot)}},
                ConditionExpression="#owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": lease.owner}},
            )
        except ClientError as error:
            if _is_conditional_failure(error):
                return False
            raise
        return True

    def owner_of(self, slot: int) -> str | None:
        """The owner token stored for a slot (consistent read), for operators and tests."""
        item = self._dynamodb.get_item(
            TableName=self._table, Key={"slot": {"S": str(slot)}}, ConsistentRead=True
        ).get("Item")
        return None if item is None else str(item["owner"]["S"])
