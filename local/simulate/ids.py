"""Snowflake IDs under a stepped clock: two generators ("processes") share the worker-slot table, each on its own
injectable clock that the simulation steps back (a little: waited out; a lot: refused), bursts past the 4096-per-ms
sequence, and freezes past its lease while the other process takes the slot over (DESIGN 5, property 10)."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

from saga.snowflake import ClockMovedBackwardsError, SnowflakeGenerator
from saga.worker_slots import WorkerSlots

BURST_IDS = 4_200  # more than one millisecond's 4096 sequence numbers
LARGE_STEP_BACK_MS = 50  # refused: beyond the generator's 10 ms wait limit
SMALL_STEP_BACK_MS = 5  # waited out


class SteppedClock:
    """Real milliseconds plus an offset the simulation moves; sleep advances the offset, never the wall."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset_ms = 0
        self._frozen_at: int | None = None

    def ms(self) -> int:
        with self._lock:
            if self._frozen_at is not None:
                return self._frozen_at
            return time.time_ns() // 1_000_000 + self._offset_ms

    def step(self, delta_ms: int) -> None:
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at += delta_ms
            else:
                self._offset_ms += delta_ms

    def sleep_ms(self, duration_ms: float) -> None:
        self.step(max(1, int(duration_ms)))

    def freeze(self) -> None:
        """Time stands still (a burst within one millisecond, a process stopped)."""
        with self._lock:
            self._frozen_at = time.time_ns() // 1_000_000 + self._offset_ms

    def thaw(self) -> None:
        """Back to real time, never earlier than where the frozen clock got to (the wait must be kept)."""
        with self._lock:
            if self._frozen_at is None:
                return
            now = time.time_ns() // 1_000_000
            self._offset_ms = max(self._offset_ms, self._frozen_at - now)
            self._frozen_at = None


class Process:
    def __init__(self, name: str, dynamodb: Any, table: str, *, lease_ms: int, slot: int | None) -> None:
        self.name = name
        self.clock = SteppedClock()
        self.slots = WorkerSlots(dynamodb, table, lease_ms=lease_ms, clock_ms=self.clock.ms, start_slot=slot,
                                 probe_limit=1 if slot is not None else 8)
        self.generator = SnowflakeGenerator(self.slots, safety_margin_ms=lease_ms // 4, heartbeat_interval_ms=None,
                                            clock_ms=self.clock.ms, sleep_ms=self.clock.sleep_ms)
        self.minted: list[int] = []


class IdSource:
    """`next_id()` for run_payment: alternates two processes and, by the seed, disturbs their clocks first."""

    def __init__(self, dynamodb: Any, table: str, rng: random.Random, *, lease_ms: int = 3_000) -> None:
        self._rng = rng
        self._lease_ms = lease_ms
        self._dynamodb = dynamodb
        self._table = table
        self._lock = threading.Lock()
        self.processes = [Process(f"p{i}", dynamodb, table, lease_ms=lease_ms, slot=None) for i in range(2)]
        for process in self.processes:
            process.generator.start()
        self.events: Counter[str] = Counter()
        self.extra_ids: list[int] = []  # burst ids that no payment uses, still part of the uniqueness check

    def close(self) -> None:
        for process in self.processes:
            process.clock.thaw()
            process.generator.close()

    def all_ids(self) -> list[int]:
        return [i for p in self.processes for i in p.minted] + self.extra_ids

    def next_id(self) -> int:
        with self._lock:
            process = self._rng.choice(self.processes)
            self._disturb(process)
            for _ in range(3):
                try:
                    new = process.generator.next_id()
                    break
                except ClockMovedBackwardsError:
                    self.events["clock_refused"] += 1
                    process.clock.step(LARGE_STEP_BACK_MS + 1)  # an operator fixes the clock; minting resumes
            else:
                raise RuntimeError("the stepped clock did not recover")
            process.minted.append(new)
            return new

    def _disturb(self, process: Process) -> None:
        roll = self._rng.random()
        if roll < 0.08:
            process.clock.step(-SMALL_STEP_BACK_MS)
            self.events["clock_back_small"] += 1
        elif roll < 0.14:
            process.clock.step(-LARGE_STEP_BACK_MS)
            self.events["clock_back_large"] += 1
        elif roll < 0.18:
            self._burst(process)
        elif roll < 0.22:
            self._lease_loss(process)

    def _burst(self, process: Process) -> None:
        """Mint past the sequence in one frozen millisecond: the generator must wait for the next one."""
        process.clock.freeze()
        try:
            burst = [process.generator.next_id() for _ in range(BURST_IDS)]
        finally:
            process.clock.thaw()
        self.extra_ids.extend(burst)
        self.events["sequence_exhausted"] += 1

    def _lease_loss(self, process: Process) -> None:
        """The process stops past its lease; another process claims the very slot; then the first one thaws."""
        slot = process.generator.slot
        if slot is None:
            return
        process.clock.freeze()
        try:
            thief = Process("thief", self._dynamodb, self._table, lease_ms=self._lease_ms, slot=slot)
            thief.clock.step(self._lease_ms + 1)  # the thief lives after the frozen process's lease lapsed
            thief.generator.start()
            taken_over = thief.generator.slot == slot
            self.extra_ids.extend(thief.generator.next_id() for _ in range(3))
            process.clock.step(self._lease_ms + 1)  # the frozen process wakes up as late as the thief
        finally:
            process.clock.thaw()
        self.extra_ids.append(process.generator.next_id())  # must not mint with the stolen slot
        thief.generator.close()
        self.events["lease_lost" if taken_over else "lease_lapsed"] += 1
