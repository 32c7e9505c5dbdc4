"""The wall clock in milliseconds: what leases and expiries that several processes compare are measured in."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["ClockMs", "wall_clock_ms"]

ClockMs = Callable[[], int]


def wall_clock_ms() -> int:
    """Milliseconds since the Unix epoch from the wall clock."""
    return time.time_ns() // 1_000_000
