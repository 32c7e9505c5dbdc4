"""The embedded local stack through its real command line: idempotent up, status, down, data that survives."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from local.stack import postgres
from local.stack.process import free_port, pid_alive

BACKEND_VARS = ("DATABASE_URL", "REDIS_URL", "AWS_ENDPOINT_URL", "PAYSAGA_API_PORT")


def paysaga(root: Path, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in BACKEND_VARS}
    env.update({"PAYSAGA_STACK_DIR": str(root), "COLUMNS": "200"})
    env.update(extra_env or {})
    return subprocess.run([sys.executable, "-m", "local.cli", *args], env=env, capture_output=True, text=True,
                          timeout=180, check=False)


def recorded(root: Path) -> dict[str, dict[str, object]]:
    return dict(json.loads((root / "stack.json").read_text())["parts"])


def stack_pids(root: Path) -> list[int]:
    pids = [int(p["pid"]) for p in recorded(root).values() if p.get("pid")]  # type: ignore[call-overload]
    pg = postgres.postmaster_pid(root / "postgres" / "data")
    return [*pids, *([pg] if pg else [])]


@pytest.fixture
def stack_root() -> Iterator[Path]:
    # Not tmp_path: its parents are 0700, and PostgreSQL (run as 'postgres' when we are root) must reach the folder.
    root = Path(tempfile.mkdtemp(prefix="paysaga-stack-test-"))
    root.chmod(0o755)
    yield root
    paysaga(root, "stack", "down")  # never leave processes behind, whatever the test did
    shutil.rmtree(root, ignore_errors=True)


def test_up_is_idempotent_status_reports_down_stops_everything_and_data_survives(stack_root: Path) -> None:
    first = paysaga(stack_root, "stack", "up")
    assert first.returncode == 0, first.stderr
    parts = recorded(stack_root)
    assert set(parts) >= {"postgres", "redis", "aws", "api"}

    second = paysaga(stack_root, "stack", "up")
    assert second.returncode == 0, second.stderr
    assert recorded(stack_root) == parts, "a second up must find the running stack, not start another"

    status = paysaga(stack_root, "stack", "status")
    assert status.returncode == 0, status.stdout + status.stderr
    for name, part in parts.items():
        assert name in status.stdout and "running" in status.stdout
        assert str(part["url"]).split("://")[1][:15] in status.stdout

    url = str(parts["postgres"]["url"]).replace("+psycopg", "")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE survives (note text)")
        conn.execute("INSERT INTO survives VALUES ('written before down')")

    pids = stack_pids(stack_root)
    assert len(pids) == len(parts)
    down = paysaga(stack_root, "stack", "down")
    assert down.returncode == 0, down.stderr
    assert [pid for pid in pids if pid_alive(pid)] == [], "down left a process of the stack running"
    assert not (stack_root / "stack.json").exists()

    again = paysaga(stack_root, "stack", "up")
    assert again.returncode == 0, again.stderr
    url = str(recorded(stack_root)["postgres"]["url"]).replace("+psycopg", "")
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT note FROM survives").fetchall() == [("written before down",)]


def test_a_killed_part_is_reported_and_not_silently_restarted(stack_root: Path) -> None:
    assert paysaga(stack_root, "stack", "up", "--no-api").returncode == 0
    redis_pid = int(recorded(stack_root)["redis"]["pid"])  # type: ignore[call-overload]
    os.kill(redis_pid, signal.SIGKILL)

    status = paysaga(stack_root, "stack", "status")
    assert status.returncode == 1
    assert "crashed" in status.stdout

    up = paysaga(stack_root, "stack", "up", "--no-api")
    assert up.returncode == 1
    assert "redis" in up.stderr and "stack down" in up.stderr
    assert int(recorded(stack_root)["redis"]["pid"]) == redis_pid  # type: ignore[call-overload]

    assert paysaga(stack_root, "stack", "down").returncode == 0
    assert paysaga(stack_root, "stack", "up", "--no-api").returncode == 0
    assert paysaga(stack_root, "stack", "status").returncode == 0


def test_database_url_that_does_not_answer_gives_one_clear_line(stack_root: Path) -> None:
    dead = f"postgresql://paysaga:hunter2@127.0.0.1:{free_port()}/paysaga"
    result = paysaga(stack_root, "stack", "up", extra_env={"DATABASE_URL": dead})
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: DATABASE_URL=") and "does not answer" in lines[0]
    assert "hunter2" not in result.stderr, "the password must never be printed"
    assert "Traceback" not in result.stderr + result.stdout


def test_run_serves_until_ctrl_c_then_stops_what_it_started(stack_root: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in BACKEND_VARS}
    env.update({"PAYSAGA_STACK_DIR": str(stack_root), "COLUMNS": "200"})
    process = subprocess.Popen([sys.executable, "-m", "local.cli", "run"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    seen = []
    for line in process.stdout:  # bounded by the readiness line or the process ending
        seen.append(line)
        if "serving on" in line:
            break
    assert any("serving on" in line for line in seen), "".join(seen)
    api_url = str(recorded(stack_root)["api"]["url"])
    with urllib.request.urlopen(api_url + "/health", timeout=5) as response:
        assert json.loads(response.read()) == {"status": "ok"}
    pids = stack_pids(stack_root)

    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=60) == 0
    assert [pid for pid in pids if pid_alive(pid)] == []
    assert not (stack_root / "stack.json").exists()
