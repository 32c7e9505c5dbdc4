"""Small process and port helpers for the embedded local stack."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pwd
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType

LOOPBACK = "127.0.0.1"
WAIT_TIMEOUT_S = 30.0
POLL_INTERVAL_S = 0.05
# How long a port handed out by free_port() stays out of other stacks' reach: longer than a server takes to bind it.
PORT_RESERVATION_S = 120.0
PORT_ATTEMPTS = 50


class StackError(RuntimeError):
    """A part of the local stack could not be started, found or stopped; the message says which and why."""


def _kernel_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _reservations_file() -> Path:
    return Path(tempfile.gettempdir()) / f"paysaga-ports-{os.getuid()}.json"


def _reserve(port: int) -> bool:
    """Record port as handed out, unless another process of ours was handed it within PORT_RESERVATION_S. True
    when the port is ours; also True when the record cannot be kept (then only the kernel's choice protects us)."""
    try:
        fd = os.open(_reservations_file(), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        return True
    with os.fdopen(fd, "r+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            try:
                raw = json.loads(handle.read() or "{}")
                held = {str(k): float(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
            except (ValueError, TypeError, AttributeError):  # a damaged record: start a new one
                held = {}
            now = time.time()
            held = {k: until for k, until in held.items() if until > now}
            if str(port) in held:
                return False
            held[str(port)] = now + PORT_RESERVATION_S
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(held))
            handle.flush()
            return True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def free_port() -> int:
    """A loopback port nobody listens on right now (the kernel picks it) that no other stack on this machine was
    handed in the last PORT_RESERVATION_S. Stacks that start at the same time (parallel simulation workers, test
    sessions) each pick their ports and bind them a moment later; without the reservation the kernel could hand one
    port to two of them, and the loser's wait_for_port would be answered by the winner's server."""
    for _ in range(PORT_ATTEMPTS):
        port = _kernel_port()
        if _reserve(port):
            return port
    raise StackError(f"no free loopback port found in {PORT_ATTEMPTS} attempts (see {_reservations_file()})")


def port_answers(port: int, host: str = LOOPBACK, timeout_s: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def wait_for_port(port: int, what: str, pid: int | None = None, timeout_s: float = WAIT_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if port_answers(port):
            return
        if pid is not None and not pid_alive(pid):
            raise StackError(f"{what} exited before it listened on {LOOPBACK}:{port}")
        time.sleep(POLL_INTERVAL_S)
    raise StackError(f"{what} did not listen on {LOOPBACK}:{port} within {timeout_s:.0f} s")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0); reap it if it is ours.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    return _state_of(pid) != "Z"


def _state_of(pid: int) -> str:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return "?"
    return stat.rsplit(")", 1)[1].split()[0]


def terminate(pid: int, timeout_s: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after timeout_s; returns when the process is gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        os.kill(pid, signal.SIGCONT)  # a stopped process (a frozen Redis or emulator) acts on SIGTERM only once resumed
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(POLL_INTERVAL_S)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    while pid_alive(pid):
        time.sleep(POLL_INTERVAL_S)


def unprivileged_user() -> str | None:
    """PostgreSQL refuses to run as root: as root, run it as the 'postgres' system user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as missing:
        raise StackError("running as root and no 'postgres' user exists to run PostgreSQL as") from missing
    return "postgres"


def check_traversable(path: Path, user: str | None) -> None:
    """Fail clearly when `user` could not reach path (a 0700 parent, as pytest's and mkdtemp's are)."""
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for parent in path.resolve().parents:
        info = parent.stat()
        if info.st_uid != entry.pw_uid and not info.st_mode & 0o001:
            raise StackError(
                f"PostgreSQL runs as '{user}' (we are root) and cannot enter {parent}: "
                f"run `chmod o+x {parent}` or choose another folder (PAYSAGA_STACK_DIR)"
            )


def chown_tree(path: Path, user: str | None) -> None:
    if user is None:
        return
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM (the stack's `down`) or SIGINT (Ctrl-C): a worker loop ends its pass and returns."""
    stop = threading.Event()

    def _stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return stop
