"""Time as the interpreter sees it. Injectable so tests run waits, retries with backoff and timeouts in no wall
time, deterministically."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

# ManualClock.wait gives up (AssertionError) when a handler neither returns nor advances virtual time for this long.
_MANUAL_REAL_WAIT_LIMIT_S = 10.0


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC (history timestamps, $$.Execution.StartTime, Wait Timestamp)."""

    def monotonic(self) -> float:
        """Seconds on a monotonic scale (deadlines)."""

    def sleep(self, seconds: float) -> None:
        """Wait for seconds (Wait states, retry intervals)."""

    def wait(self, future: concurrent.futures.Future[Any], deadline_monotonic_s: float | None) -> bool:
        """Wait until future is done or monotonic() reaches the deadline; True when it is done."""


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    def wait(self, future: concurrent.futures.Future[Any], deadline_monotonic_s: float | None) -> bool:
        timeout_s = None if deadline_monotonic_s is None else max(deadline_monotonic_s - time.monotonic(), 0.0)
        try:
            future.exception(timeout=timeout_s)  # lighter than concurrent.futures.wait: no extra waiter object
        except concurrent.futures.TimeoutError:
            return False
        return True


class ManualClock:
    """Virtual time for tests: sleep() advances it at once (and records the duration), so Wait states and retry
    backoff take no wall time; wait() reports a task timeout as soon as virtual time passes the deadline, which a
    handler simulating a slow call causes with advance()."""

    def __init__(self, start: datetime = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)) -> None:
        self._start = start
        self._t = 0.0
        self._cond = threading.Condition()
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        with self._cond:
            return self._start + timedelta(seconds=self._t)

    def monotonic(self) -> float:
        with self._cond:
            return self._t

    def sleep(self, seconds: float) -> None:
        with self._cond:
            self.sleeps.append(seconds)
            self._t += seconds
            self._cond.notify_all()

    def advance(self, seconds: float) -> None:
        with self._cond:
            self._t += seconds
            self._cond.notify_all()

    def wait(self, future: concurrent.futures.Future[Any], deadline_monotonic_s: float | None) -> bool:
        def wake(_: object) -> None:
            with self._cond:
                self._cond.notify_all()

        future.add_done_callback(wake)
        real_deadline = time.monotonic() + _MANUAL_REAL_WAIT_LIMIT_S
        with self._cond:
            while not future.done():
                if deadline_monotonic_s is not None and self._t >= deadline_monotonic_s:
                    return False
                if time.monotonic() > real_deadline:
                    raise AssertionError("handler neither returned nor advanced the ManualClock")
                self._cond.wait(0.2)
        return True
