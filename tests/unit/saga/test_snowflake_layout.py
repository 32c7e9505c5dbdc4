"""Snowflake ids: the epoch and the bit layout, pure functions (the generator against real worker slots:
tests/integration/saga/ids/test_snowflake.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from saga.snowflake import (
    EPOCH_MS,
    SEQUENCE_MAX,
    TIME_MAX_MS,
    ClockOutOfRangeError,
    SnowflakeParts,
    decode,
    encode,
)

# Some day well inside the 41-bit range, so tests never depend on today's date.
T0_MS = EPOCH_MS + 86_400_000 * 30


def test_epoch_is_2026_01_01_utc() -> None:
    assert dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp() * 1000 == EPOCH_MS


def test_layout_round_trips_at_the_edges_and_fits_63_bits() -> None:
    largest = encode(EPOCH_MS + TIME_MAX_MS, 1023, SEQUENCE_MAX)
    assert largest == (1 << 63) - 1
    assert decode(largest) == SnowflakeParts(EPOCH_MS + TIME_MAX_MS, 1023, SEQUENCE_MAX)
    assert decode(encode(EPOCH_MS, 0, 0)) == SnowflakeParts(EPOCH_MS, 0, 0)
    assert decode(encode(T0_MS, 513, 77)) == SnowflakeParts(T0_MS, 513, 77)
    with pytest.raises(ClockOutOfRangeError):
        encode(EPOCH_MS - 1, 0, 0)
    with pytest.raises(ClockOutOfRangeError):
        encode(EPOCH_MS + TIME_MAX_MS + 1, 0, 0)
