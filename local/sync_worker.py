"""The local stack's schedules: the payment-status sync (`saga.sync.sync`) every interval, and reconciliation
(local/recon/schedule.py) every hour, as the EventBridge schedules run them on AWS.

Run: ``python -m local.sync_worker [--every-ms N] [--grace-ms N] [--recon-every-ms N]``; stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from datetime import date
from pathlib import Path

from core import limits
from core.settings import settings
from local.recon.schedule import RECON_INTERVAL_MS, reconcile_locally
from local.saga_runtime import local_services
from local.stack.process import stop_on_signals
from local.stack.state import stack_dir
from saga.sync import sync

_log = logging.getLogger("paysaga.sync")


def _landing() -> Path:
    """The stack's folder holds the landed ledger, like the rest of its state."""
    return stack_dir() / "landing"


def run(*, every_ms: int, grace_ms: int, stop: threading.Event, recon_every_ms: int = RECON_INTERVAL_MS) -> None:
    services = local_services(settings())
    aged_done: set[date] = set()
    next_recon = time.monotonic()
    try:
        while not stop.is_set():
            try:
                sync(services, grace_ms=grace_ms)
            except Exception:  # one failed pass (a backend restarting) must not end the worker
                _log.exception("sync pass failed; the next one tries again")
            if recon_every_ms > 0 and time.monotonic() >= next_recon:
                next_recon = time.monotonic() + recon_every_ms / 1000
                try:
                    reconcile_locally(settings(), landing=_landing(), aged_done=aged_done)
                except Exception:
                    _log.exception("reconciliation pass failed; the next one tries again")
            stop.wait(every_ms / 1000)
    finally:
        services.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="paysaga local payment-status sync")
    parser.add_argument("--every-ms", type=int, default=limits.SYNC_INTERVAL_MS)
    parser.add_argument("--grace-ms", type=int, default=limits.SYNC_GRACE_MS)
    parser.add_argument("--recon-every-ms", type=int, default=RECON_INTERVAL_MS, help="0: no reconciliation")
    args = parser.parse_args(argv)
    stop = stop_on_signals()
    logging.basicConfig(level=logging.INFO)
    run(every_ms=args.every_ms, grace_ms=args.grace_ms, stop=stop, recon_every_ms=args.recon_every_ms)


if __name__ == "__main__":
    main()
