"""CPU seconds the PostgreSQL server spent (postmaster + live backends + reaped backends), and any one stack
process, read from /proc, so a run's server-side cost per payment is measured beside its wall-clock time."""

from __future__ import annotations

import os
import time
from pathlib import Path

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()  # fields from 3 (state) on: the command may hold spaces


def process_cpu_s(pid: int) -> float:
    """utime+stime+cutime+cstime of one process (a stack part: API server, moto, gateway, redis)."""
    fields = _stat(pid)
    return sum(int(fields[i]) for i in (11, 12, 13, 14)) / _TICKS_PER_S


def postmaster_of(backend_pid: int) -> int:
    return int(_stat(backend_pid)[1])  # field 4: ppid


def server_cpu_s(postmaster_pid: int) -> float:
    """utime+stime of the postmaster and its live children, plus cutime+cstime (children already reaped)."""
    fields = _stat(postmaster_pid)
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime (fields 14-17)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            child = _stat(int(entry.name))
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
        if int(child[1]) == postmaster_pid:
            ticks += int(child[11]) + int(child[12])
    return ticks / _TICKS_PER_S


def children(postmaster_pid: int) -> int:
    count = 0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                count += int(_stat(int(entry.name))[1]) == postmaster_pid
            except (FileNotFoundError, ProcessLookupError, ValueError):
                continue
    return count


def settle(postmaster_pid: int, children_before: int, timeout_s: float = 3.0, poll_s: float = 0.02) -> None:
    """Wait until backends of closed connections have exited and been reaped (their CPU is then in cutime/cstime,
    not lost between the two counters), at most timeout_s."""
    deadline = time.monotonic() + timeout_s
    while children(postmaster_pid) > children_before and time.monotonic() < deadline:
        time.sleep(poll_s)
