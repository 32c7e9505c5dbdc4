"""redis-server on a loopback port with a folder of its own."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from local.stack.process import LOOPBACK, StackError, wait_for_port


def find_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        raise StackError("redis-server not found: run 'make setup' (it installs it with apt-get)")
    return found


def start(workdir: Path, port: int, *, persistent: bool) -> subprocess.Popen[bytes]:
    """Start redis-server detached from our terminal; the caller records its pid."""
    workdir.mkdir(parents=True, exist_ok=True)
    args = [find_binary(), "--port", str(port), "--bind", LOOPBACK, "--dir", str(workdir),
            "--protected-mode", "yes", "--daemonize", "no", "--logfile", str(workdir / "redis.log")]
    if persistent:
        args += ["--appendonly", "yes", "--save", "60 1"]
    else:
        args += ["--appendonly", "no", "--save", ""]
    process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for_port(port, "redis-server", pid=process.pid)
    return process


def url(port: int) -> str:
    return f"redis://{LOOPBACK}:{port}/0"
