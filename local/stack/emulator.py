"""The AWS emulator on loopback (moto's server) for DynamoDB, SQS, SNS and EventBridge."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from local.stack.process import LOOPBACK, wait_for_port


def start(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    workdir.mkdir(parents=True, exist_ok=True)
    log = (workdir / "moto.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "local.stack.moto_server", "-H", LOOPBACK, "-p", str(port)],
        stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, cwd=workdir,
    )
    wait_for_port(port, "AWS emulator (moto)", pid=process.pid)
    return process


def url(port: int) -> str:
    return f"http://{LOOPBACK}:{port}"
