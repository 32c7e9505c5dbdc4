"""The sandbox gateway as a real server process: one per test session (reset per test), plus a helper to start
private ones (restart tests)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from local.stack.process import free_port, terminate, wait_for_port
from steps.gateway.sandbox import SandboxGateway

PROJECT_ROOT = Path(__file__).resolve().parents[4]
CLIENT_TIMEOUT_MS = 1_000  # withheld answers cost a test this long


@dataclass
class SandboxProcess:
    db_path: Path
    log_path: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *extra_args: str) -> None:
        assert self.process is None, "already running"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "local.sandbox.server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--db",
                    str(self.db_path),
                    *extra_args,
                ],
                cwd=PROJECT_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        wait_for_port(self.port, f"sandbox gateway (log: {self.log_path})", pid=self.process.pid)

    def stop(self) -> None:
        if self.process is not None:
            terminate(self.process.pid)
            self.process.wait()
            self.process = None

    def crash(self) -> None:
        """SIGKILL: no shutdown hook runs, as in a machine losing the process."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.process = None


@contextlib.contextmanager
def running_sandbox(directory: Path, *extra_args: str) -> Iterator[SandboxProcess]:
    server = SandboxProcess(db_path=directory / "sandbox.db", log_path=directory / "sandbox.log")
    server.start(*extra_args)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def sandbox_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxProcess]:
    with running_sandbox(tmp_path_factory.mktemp("sandbox-gateway")) as server:
        yield server


@pytest.fixture
def sandbox_admin(sandbox_server: SandboxProcess) -> Iterator[httpx.Client]:
    """An HTTP client on the sandbox, after resetting its state and config."""
    with httpx.Client(base_url=sandbox_server.url, timeout=5.0) as client:
        client.post("/_sandbox/reset").raise_for_status()
        yield client


@pytest.fixture
def gateway(sandbox_admin: httpx.Client) -> Iterator[SandboxGateway]:
    with SandboxGateway(base_url=str(sandbox_admin.base_url), timeout_ms=CLIENT_TIMEOUT_MS) as adapter:
        yield adapter


def ref(gateway: SandboxGateway, payment_id: str) -> str:
    """The gateway's reference of a payment, as the saga would have kept it from the authorization (or lookup)."""
    found = gateway.lookup(payment_id=payment_id)
    assert found is not None, f"the gateway does not know {payment_id}"
    return found.gateway_reference
