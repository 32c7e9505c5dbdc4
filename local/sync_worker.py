"""The local stack's payment-status sync: `saga.sync.sync` every interval, as the EventBridge schedule runs it on AWS.

Run: ``python -m local.sync_worker [--every-ms N] [--grace-ms N]``; stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import threading

from core import limits
from core.settings import settings
from local.saga_runtime import local_services
from local.stack.process import stop_on_signals
from saga.sync import sync

_log = logging.getLogger("paysaga.sync")


def run(*, every_ms: int, grace_ms: int, stop: threading.Event) -> None:
    services = local_services(settings())
    try:
        while not stop.is_set():
            try:
                sync(services, grace_ms=grace_ms)
            except Exception:  # one failed pass (a backend restarting) must not end the worker
                _log.exception("sync pass failed; the next one tries again")
            stop.wait(every_ms / 1000)
    finally:
        services.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="paysaga local payment-status sync")
    parser.add_argument("--every-ms", type=int, default=limits.SYNC_INTERVAL_MS)
    parser.add_argument("--grace-ms", type=int, default=limits.SYNC_GRACE_MS)
    args = parser.parse_args(argv)
    stop = stop_on_signals()
    logging.basicConfig(level=logging.INFO)
    run(every_ms=args.every_ms, grace_ms=args.grace_ms, stop=stop)


if __name__ == "__main__":
    main()
