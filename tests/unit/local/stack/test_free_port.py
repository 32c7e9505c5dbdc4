"""free_port() never hands one port to two stacks starting at the same time: a port it gave out stays reserved (in a
file every process of this user shares) until a server has had time to bind it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.stack import process


@pytest.fixture
def reservations(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "ports.json"
    monkeypatch.setattr(process, "_reservations_file", lambda: path)
    return path


def _kernel_hands_out(monkeypatch: pytest.MonkeyPatch, ports: list[int]) -> None:
    handed: Iterator[int] = iter(ports)
    monkeypatch.setattr(process, "_kernel_port", lambda: next(handed))


def test_a_port_handed_out_is_not_handed_out_again(reservations: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _kernel_hands_out(monkeypatch, [41_000, 41_000, 41_000, 41_001])
    assert process.free_port() == 41_000
    assert process.free_port() == 41_001  # the kernel offered 41000 twice more: still reserved
    assert set(json.loads(reservations.read_text())) == {"41000", "41001"}


def test_a_reservation_expires(reservations: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reservations.write_text('{"41000": 1.0, "41002": 1e12}')  # long expired; far in the future
    _kernel_hands_out(monkeypatch, [41_002, 41_000])
    assert process.free_port() == 41_000
    assert set(json.loads(reservations.read_text())) == {"41000", "41002"}  # the expired one reused


def test_a_real_port_is_free(reservations: Path) -> None:
    first, second = process.free_port(), process.free_port()
    assert first != second
    assert not process.port_answers(first)
