"""Worker slot leases in the real moto server: conditional claims, the scan fallback, exhaustion."""

from __future__ import annotations

import pytest

from core.settings import Settings
from saga.worker_slots import SLOT_COUNT, WorkerSlotsExhaustedError
from tests.integration.saga.ids.support import T0_MS, SteppedClock, fill_slots, slots


def test_a_live_lease_cannot_be_claimed_and_a_lapsed_one_can(dynamo_settings: Settings) -> None:
    clock = SteppedClock()
    first = slots(dynamo_settings, clock, lease_ms=1_000)
    lease = first.try_claim(5)
    assert lease is not None and lease.expires_ms == T0_MS + 1_000
    assert first.owner_of(5) == lease.owner
    at_expiry = slots(dynamo_settings, SteppedClock(T0_MS + 1_000))
    assert at_expiry.try_claim(5) is None  # the lease still covers its last millisecond
    later = slots(dynamo_settings, SteppedClock(T0_MS + 1_001))
    taken = later.try_claim(5)
    assert taken is not None and taken.owner != lease.owner
    assert first.renew(lease) is None
    assert first.release(lease) is False
    assert later.owner_of(5) == taken.owner


def test_renewal_only_ever_extends_the_stored_expiry(dynamo_settings: Settings) -> None:
    clock = SteppedClock()
    worker_slots = slots(dynamo_settings, clock, lease_ms=1_000)
    lease = worker_slots.try_claim(1)
    assert lease is not None
    clock.now_ms += 500
    renewed = worker_slots.renew(lease)
    assert renewed is not None and renewed.expires_ms == T0_MS + 1_500
    clock.now_ms -= 200  # a late renewal computed from an older clock reading must not shorten the lease
    again = worker_slots.renew(renewed)
    assert again is not None and again.expires_ms == T0_MS + 1_500
    grabber = slots(dynamo_settings, SteppedClock(T0_MS + 1_400))
    assert grabber.try_claim(1) is None


def test_the_scan_finds_the_one_free_slot_beyond_the_probes(dynamo_settings: Settings) -> None:
    fill_slots(dynamo_settings, expires_ms=T0_MS + 60_000, except_slots={777})
    lease = slots(dynamo_settings, SteppedClock(), start_slot=0, probe_limit=16).claim()
    assert lease.slot == 777


def test_a_lapsed_slot_found_by_the_scan_is_claimable(dynamo_settings: Settings) -> None:
    fill_slots(dynamo_settings, expires_ms=T0_MS + 60_000, except_slots={500})
    crashed = slots(dynamo_settings, SteppedClock(T0_MS - 5_000), lease_ms=1_000).try_claim(500)
    assert crashed is not None
    worker_slots = slots(dynamo_settings, SteppedClock(), start_slot=0, probe_limit=16)
    lease = worker_slots.claim()
    assert lease.slot == 500
    assert worker_slots.owner_of(500) == lease.owner != crashed.owner


def test_all_slots_taken_is_a_clear_error(dynamo_settings: Settings) -> None:
    fill_slots(dynamo_settings, expires_ms=T0_MS + 60_000)
    with pytest.raises(WorkerSlotsExhaustedError, match=f"all {SLOT_COUNT} worker slots"):
        slots(dynamo_settings, SteppedClock()).claim()
