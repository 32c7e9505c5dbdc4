"""The local Stripe server (local/stripe/server.py: localstripe behind the front) as a throwaway process for a test
session or a benchmark. It raises when the server cannot start: the tests that need it error, never skip."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from local.stack.process import LOOPBACK, StackError, free_port, terminate, wait_for_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@contextlib.contextmanager
def stripe_server_process(state_dir: Path, *extra_args: str, port: int | None = None) -> Iterator[str]:
    """``python -m local.stripe.server`` on ``port`` (default: a free one) keeping its state in ``state_dir``; its
    base URL while it runs (the directory stays, so the next process with it finds the same state)."""
    port = port or free_port()
    state_dir.mkdir(parents=True, exist_ok=True)
    log_path = state_dir / "server.log"
    command = [
        sys.executable,
        "-m",
        "local.stripe.server",
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--state-dir",
        str(state_dir),
        *extra_args,
    ]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True
        )
    try:
        try:
            wait_for_port(port, f"local Stripe server (log: {log_path})", pid=process.pid)
        except StackError as failed:
            raise StackError(f"{failed}\n{log_path.read_text(errors='replace')[-2000:]}") from None
        yield f"http://{LOOPBACK}:{port}"
    finally:
        terminate(process.pid)
        process.wait()


@contextlib.contextmanager
def running_stripe_server(*extra_args: str) -> Iterator[str]:
    """The local Stripe server on free loopback ports, in a throwaway folder; its (the front's) base URL."""
    state_dir = Path(tempfile.mkdtemp(prefix="paysaga-stripe-"))
    try:
        with stripe_server_process(state_dir, *extra_args) as url:
            yield url
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)
