"""Snowflake IDs (DESIGN 5): 41-bit ms since 2026-01-01T00:00:00Z | 10-bit leased slot | 12-bit sequence.

Uniqueness of (ms, slot, seq) rests on three rules:
- a slot is used only while our lease, minus a safety margin, covers the millisecond (checked before every
  mint, so a process frozen past its lease re-claims instead of minting with a slot someone else now holds);
- after claiming a slot we mint nothing earlier than the clock read once the claim landed (`Lease.floor_ms`),
  and we release a slot only after the clock has passed our last minted millisecond;
- within one generator ms never goes back (small rollbacks are waited out, large ones refused) and the
  sequence never wraps within a millisecond (we wait for the next one).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import NamedTuple

from core.aws import client
from core.clock import ClockMs, wall_clock_ms
from core.settings import Settings
from saga.worker_slots import DEFAULT_LEASE_MS, SLOT_BITS, SLOT_COUNT, Lease, WorkerSlots

log = logging.getLogger(__name__)

EPOCH_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z in Unix milliseconds
TIME_BITS = 41
SEQUENCE_BITS = 12
SEQUENCE_MAX = (1 << SEQUENCE_BITS) - 1
SLOT_SHIFT = SEQUENCE_BITS
TIME_SHIFT = SEQUENCE_BITS + SLOT_BITS
TIME_MAX_MS = (1 << TIME_BITS) - 1  # about 69.7 years after the epoch

# A clock stepped back by at most this much (NTP slew, VM migration) is waited out; more is refused.
CLOCK_BACKWARD_WAIT_LIMIT_MS = 10
DEFAULT_SAFETY_MARGIN_MS = 5_000
DEFAULT_HEARTBEAT_INTERVAL_MS = 10_000
# Loop turns in one next_id(): each is a wait (sequence exhausted, small rollback) or a lease re-claim.
MAX_MINT_ROUNDS = 1_000
HEARTBEAT_JOIN_TIMEOUT_S = 5.0

SleepMs = Callable[[float], None]


def real_sleep_ms(duration_ms: float) -> None:
    time.sleep(duration_ms / 1000.0)


class SnowflakeError(RuntimeError):
    """Base of the errors below."""


class ClockMovedBackwardsError(SnowflakeError):
    """The clock went back further than CLOCK_BACKWARD_WAIT_LIMIT_MS: minting now could repeat an ID."""


class ClockOutOfRangeError(SnowflakeError):
    """The clock is before the project epoch or past the 41-bit range."""


class MintStalledError(SnowflakeError):
    """next_id() waited MAX_MINT_ROUNDS times without the clock moving on."""


class GeneratorClosedError(SnowflakeError):
    """next_id() after close()."""


class SnowflakeParts(NamedTuple):
    ms: int  # Unix epoch milliseconds
    slot: int
    seq: int


def encode(unix_ms: int, slot: int, seq: int) -> int:
    offset_ms = unix_ms - EPOCH_MS
    if not 0 <= offset_ms <= TIME_MAX_MS:
        raise ClockOutOfRangeError(f"{unix_ms} ms is outside the Snowflake range starting at {EPOCH_MS} ms")
    assert 0 <= slot < SLOT_COUNT, slot
    assert 0 <= seq <= SEQUENCE_MAX, seq
    return (offset_ms << TIME_SHIFT) | (slot << SLOT_SHIFT) | seq


def decode(snowflake_id: int) -> SnowflakeParts:
    assert 0 <= snowflake_id < (1 << (TIME_BITS + TIME_SHIFT)), snowflake_id
    return SnowflakeParts(
        ms=(snowflake_id >> TIME_SHIFT) + EPOCH_MS,
        slot=(snowflake_id >> SLOT_SHIFT) & (SLOT_COUNT - 1),
        seq=snowflake_id & SEQUENCE_MAX,
    )


class SnowflakeGenerator:
    """Mints IDs with a leased worker slot. Thread-safe; one per process (Lambda: one per cold start)."""

    def __init__(
        self,
        slots: WorkerSlots,
        *,
        safety_margin_ms: int = DEFAULT_SAFETY_MARGIN_MS,
        heartbeat_interval_ms: int | None = DEFAULT_HEARTBEAT_INTERVAL_MS,
        clock_ms: ClockMs = wall_clock_ms,
        sleep_ms: SleepMs = real_sleep_ms,
        backward_wait_limit_ms: int = CLOCK_BACKWARD_WAIT_LIMIT_MS,
    ) -> None:
        assert 0 <= safety_margin_ms < slots.lease_ms, "the margin must leave part of the lease usable"
        if heartbeat_interval_ms is not None:
            # Renew well before the usable part of the lease runs out.
            assert 0 < heartbeat_interval_ms < slots.lease_ms - safety_margin_ms
        self._slots = slots
        self._margin_ms = safety_margin_ms
        self._heartbeat_interval_ms = heartbeat_interval_ms
        self._clock_ms = clock_ms
        self._sleep_ms = sleep_ms
        self._backward_limit_ms = backward_wait_limit_ms
        self._lock = threading.Lock()
        self._renewed = threading.Condition(self._lock)
        self._lease: Lease | None = None
        self._last_ms = 0
        self._seq = 0
        self._closed = False
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self.renewals = 0  # successful renewals, for operators and tests
        self.claims = 0

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> SnowflakeGenerator:
        """Claim a slot now (cold start) and start the heartbeat thread if an interval is set."""
        with self._lock:
            self._claim_locked()
        if self._heartbeat_interval_ms is not None and self._heartbeat is None:
            self._heartbeat = threading.Thread(
                target=self._heartbeat_loop, name="snowflake-heartbeat", daemon=True
            )
            self._heartbeat.start()
        return self

    def close(self) -> None:
        """Stop the heartbeat and release the slot once the clock has passed our last minted millisecond."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(HEARTBEAT_JOIN_TIMEOUT_S)
        with self._lock:
            self._closed = True
            lease, self._lease = self._lease, None
            if lease is None:
                return
            for _ in range(MAX_MINT_ROUNDS):
                now_ms = self._clock_ms()
                if now_ms > self._last_ms:
                    break
                self._sleep_ms(self._last_ms + 1 - now_ms)
            else:
                # Not released: the lease then lapses on its own, which is safe, only slower.
                log.warning("clock did not pass %d ms; leaving slot %d to lapse", self._last_ms, lease.slot)
                return
            self._slots.release(lease)

    def __enter__(self) -> SnowflakeGenerator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def slot(self) -> int | None:
        """The slot held right now (None before start or after the lease was lost)."""
        with self._lock:
            return None if self._lease is None else self._lease.slot

    # -- minting ---------------------------------------------------------------------------------------------

    def next_id(self) -> int:
        with self._lock:
            if self._closed:
                raise GeneratorClosedError("this Snowflake generator was closed")
            for _ in range(MAX_MINT_ROUNDS):
                now_ms = self._clock_ms()
                lease = self._lease
                if lease is None or now_ms >= lease.expires_ms - self._margin_ms:
                    self._refresh_lease_locked(lease)
                    continue  # the lease calls took time: read the clock again
                floor_ms = max(self._last_ms, lease.floor_ms)
                if now_ms < floor_ms:
                    behind_ms = floor_ms - now_ms
                    if behind_ms > self._backward_limit_ms:
                        raise ClockMovedBackwardsError(
                            f"clock is {behind_ms} ms behind the last minted/claimed millisecond {floor_ms}; "
                            f"refusing to mint (waits only up to {self._backward_limit_ms} ms)"
                        )
                    self._sleep_ms(behind_ms)
                    continue
                if now_ms == self._last_ms:
                    if self._seq >= SEQUENCE_MAX:
                        self._sleep_ms(1)  # sequence exhausted: wait for the next millisecond
                        continue
                    self._seq += 1
                else:
                    self._last_ms = now_ms
                    self._seq = 0
                return encode(now_ms, lease.slot, self._seq)
            raise MintStalledError(f"no Snowflake ID after {MAX_MINT_ROUNDS} waits; is the clock stuck?")

    def _refresh_lease_locked(self, lease: Lease | None) -> None:
        """Our lease is missing or inside its safety margin: renew it if still ours, else claim anew."""
        if lease is not None:
            renewed = self._slots.renew(lease)
            if renewed is not None:
                self._lease = renewed
                self.renewals += 1
                self._renewed.notify_all()
                return
            log.warning("worker slot %d was taken over while our lease lapsed; claiming another", lease.slot)
            self._lease = None
        self._claim_locked()

    def _claim_locked(self) -> None:
        self._lease = self._slots.claim()
        self.claims += 1

    # -- heartbeat -------------------------------------------------------------------------------------------

    def renew(self) -> bool:
        """Extend the lease now; False when there is none or it was taken over (next_id() then re-claims)."""
        with self._lock:
            lease = self._lease
        if lease is None:
            return False
        renewed = self._slots.renew(lease)  # network call outside the lock: minting goes on meanwhile
        with self._lock:
            current = self._lease
            if current is None or current.owner != lease.owner:
                return False  # the minting path re-claimed meanwhile
            if renewed is None:
                log.warning("worker slot %d was taken over; next_id() will claim another", lease.slot)
                self._lease = None
                return False
            if renewed.expires_ms > current.expires_ms:
                self._lease = renewed
            self.renewals += 1
            self._renewed.notify_all()
            return True

    def wait_for_renewals(self, count: int, timeout_s: float) -> bool:
        """Block until at least `count` renewals happened (tests and health checks)."""
        with self._renewed:
            return self._renewed.wait_for(lambda: self.renewals >= count, timeout=timeout_s)

    def _heartbeat_loop(self) -> None:
        assert self._heartbeat_interval_ms is not None
        while not self._stop.wait(self._heartbeat_interval_ms / 1000.0):
            try:
                self.renew()
            except Exception:  # a transient error must not kill the heartbeat; next_id() re-checks anyway
                log.exception("worker slot heartbeat failed")


def create_generator(
    settings: Settings,
    *,
    lease_ms: int = DEFAULT_LEASE_MS,
    safety_margin_ms: int = DEFAULT_SAFETY_MARGIN_MS,
    heartbeat_interval_ms: int | None = DEFAULT_HEARTBEAT_INTERVAL_MS,
) -> SnowflakeGenerator:
    """A started generator on the worker_slots table named in settings (call close() at shutdown)."""
    slots = WorkerSlots(client("dynamodb", settings), settings.worker_slots_table, lease_ms=lease_ms)
    return SnowflakeGenerator(
        slots, safety_margin_ms=safety_margin_ms, heartbeat_interval_ms=heartbeat_interval_ms
    ).start()
