"""Snowflake generator: ordering, clock rollback, sequence exhaustion, lease loss (stepped clock, real moto server).
The bit layout alone: tests/unit/saga/test_snowflake_layout.py."""

from __future__ import annotations

import pytest

from core.settings import Settings
from saga.snowflake import (
    CLOCK_BACKWARD_WAIT_LIMIT_MS,
    SEQUENCE_MAX,
    ClockMovedBackwardsError,
    GeneratorClosedError,
    MintStalledError,
    SnowflakeGenerator,
    SnowflakeParts,
    decode,
)
from saga.worker_slots import WorkerSlots
from tests.integration.saga.ids.support import T0_MS, SteppedClock, dynamodb, slots

LEASE_MS = 1_000
MARGIN_MS = 100


def generator(settings: Settings, clock: SteppedClock, start_slot: int | None = 0) -> SnowflakeGenerator:
    return SnowflakeGenerator(
        slots(settings, clock, lease_ms=LEASE_MS, start_slot=start_slot),
        safety_margin_ms=MARGIN_MS,
        heartbeat_interval_ms=None,
        clock_ms=clock,
        sleep_ms=clock.sleep,
    ).start()


def test_ids_sort_by_time_and_decode_to_ms_slot_seq(dynamo_settings: Settings) -> None:
    clock = SteppedClock()
    gen = generator(dynamo_settings, clock, start_slot=42)
    minted: list[tuple[int, int]] = []
    for _ in range(50):
        clock.now_ms += 7
        for _ in range(3):
            minted.append((gen.next_id(), clock.now_ms))
    ids = [snowflake for snowflake, _ in minted]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    for index, (snowflake, at_ms) in enumerate(minted):
        assert decode(snowflake) == SnowflakeParts(at_ms, 42, index % 3)


@pytest.mark.parametrize("back_ms", [1, 5, CLOCK_BACKWARD_WAIT_LIMIT_MS])
def test_a_small_clock_rollback_is_waited_out(dynamo_settings: Settings, back_ms: int) -> None:
    clock = SteppedClock()
    gen = generator(dynamo_settings, clock)
    first = gen.next_id()
    clock.now_ms -= back_ms
    second = gen.next_id()
    assert clock.sleeps_ms == [back_ms]
    assert second > first
    assert decode(second) == SnowflakeParts(T0_MS, 0, 1)


def test_a_large_clock_rollback_is_refused_until_the_clock_recovers(dynamo_settings: Settings) -> None:
    clock = SteppedClock()
    gen = generator(dynamo_settings, clock)
    first = gen.next_id()
    clock.now_ms -= CLOCK_BACKWARD_WAIT_LIMIT_MS + 1
    with pytest.raises(ClockMovedBackwardsError, match="behind"):
        gen.next_id()
    assert clock.sleeps_ms == []
    clock.now_ms = T0_MS + 1
    after = gen.next_id()
    assert after > first
    assert decode(after) == SnowflakeParts(T0_MS + 1, 0, 0)


def test_sequence_exhaustion_waits_for_the_next_millisecond(dynamo_settings: Settings) -> None:
    clock = SteppedClock()
    gen = generator(dynamo_settings, clock)
    ids = [gen.next_id() for _ in range(SEQUENCE_MAX + 2)]
    assert len(set(ids)) == len(ids)
    assert [decode(snowflake).seq for snowflake in ids[: SEQUENCE_MAX + 1]] == list(range(SEQUENCE_MAX + 1))
    assert {decode(snowflake).ms for snowflake in ids[: SEQUENCE_MAX + 1]} == {T0_MS}
    assert decode(ids[-1]) == SnowflakeParts(T0_MS + 1, 0, 0)
    assert clock.sleeps_ms == [1]


def test_a_stuck_clock_fails_after_a_bounded_wait(dynamo_settings: Settings) -> None:
    clock = SteppedClock()
    gen = SnowflakeGenerator(
        slots(dynamo_settings, clock, lease_ms=LEASE_MS, start_slot=0),
        safety_margin_ms=MARGIN_MS, heartbeat_interval_ms=None, clock_ms=clock,
        sleep_ms=lambda _ms: None,  # time does not move
    ).start()
    for _ in range(SEQUENCE_MAX + 1):
        gen.next_id()
    with pytest.raises(MintStalledError):
        gen.next_id()


def test_a_paused_process_whose_slot_was_taken_over_reclaims_another(dynamo_settings: Settings) -> None:
    paused = SteppedClock()
    a = generator(dynamo_settings, paused)
    before = [a.next_id() for _ in range(5)]
    assert a.slot == 0

    # A is frozen; real time runs past its lease and B, starting at the same slot, takes the lapsed slot 0.
    other = SteppedClock(T0_MS + 3 * LEASE_MS)
    b = generator(dynamo_settings, other)
    assert b.slot == 0
    b_ids = [b.next_id() for _ in range(5)]

    # A thaws in the very millisecond B minted in: minting with slot 0 now would repeat B's IDs.
    paused.now_ms = other.now_ms
    after = [a.next_id() for _ in range(5)]
    new_slot = a.slot
    assert new_slot is not None and new_slot != 0
    assert all(decode(snowflake).slot == new_slot for snowflake in after)
    assert {decode(snowflake).slot for snowflake in before} == {0}
    everything = before + b_ids + after
    assert len(set(everything)) == len(everything)
    assert a.claims == 2


def test_a_paused_process_keeps_its_slot_when_nobody_took_it(dynamo_settings: Settings) -> None:
    clock = SteppedClock()
    gen = generator(dynamo_settings, clock, start_slot=7)
    first = gen.next_id()
    clock.now_ms += LEASE_MS * 5  # far past the lease, but the slot is still ours in DynamoDB
    second = gen.next_id()
    assert decode(second).slot == 7 and second > first
    assert (gen.claims, gen.renewals) == (1, 1)


def test_minting_renews_inside_the_safety_margin(dynamo_settings: Settings) -> None:
    clock = SteppedClock()
    gen = generator(dynamo_settings, clock)
    clock.now_ms = T0_MS + LEASE_MS - MARGIN_MS - 1
    gen.next_id()
    assert gen.renewals == 0
    clock.now_ms += 1  # now inside the margin: the lease must be extended before minting
    gen.next_id()
    assert gen.renewals == 1


def test_a_heartbeat_that_finds_the_slot_taken_drops_it(dynamo_settings: Settings) -> None:
    clock = SteppedClock()
    a = generator(dynamo_settings, clock)
    a.next_id()
    thief = slots(dynamo_settings, SteppedClock(T0_MS + 2 * LEASE_MS))
    assert thief.try_claim(0) is not None
    assert a.renew() is False
    assert a.slot is None
    clock.now_ms += 1
    assert decode(a.next_id()).slot == 1  # slot 0 is held by the thief now


def test_the_heartbeat_thread_renews_with_the_real_clock(dynamo_settings: Settings) -> None:
    worker_slots_real = WorkerSlots(
        dynamodb(dynamo_settings), dynamo_settings.worker_slots_table, lease_ms=60_000, start_slot=3
    )
    with SnowflakeGenerator(worker_slots_real, safety_margin_ms=1_000, heartbeat_interval_ms=20) as gen:
        assert gen.wait_for_renewals(3, timeout_s=10.0)
        assert gen.slot == 3
        gen.next_id()
    assert worker_slots_real.owner_of(3) is None  # released at close


def test_close_releases_only_after_the_last_minted_millisecond(dynamo_settings: Settings) -> None:
    clock = SteppedClock()
    a = generator(dynamo_settings, clock, start_slot=9)
    a_ids = [a.next_id() for _ in range(3)]
    a.close()
    assert clock.sleeps_ms == [1]
    with pytest.raises(GeneratorClosedError):
        a.next_id()
    b = generator(dynamo_settings, clock, start_slot=9)
    assert b.slot == 9
    b_ids = [b.next_id() for _ in range(3)]
    assert min(decode(snowflake).ms for snowflake in b_ids) > max(decode(snowflake).ms for snowflake in a_ids)
    assert len(set(a_ids + b_ids)) == 6
