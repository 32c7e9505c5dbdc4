"""moto's server with one correction: DynamoDB requests are served one at a time.

moto checks a write's condition and stores the item in two separate steps with no lock, so under load two concurrent
conditional writes of one key (`attribute_not_exists(pk)`) can both succeed. DynamoDB itself never lets that happen,
and the idempotency gate and the worker slots rest on it: a simulation run on a loaded machine once saw one
Idempotency-Key start two payments. Serializing DynamoDB calls gives the emulator the atomicity the real service
has; SQS, SNS and EventBridge stay concurrent.

    python -m local.stack.moto_server -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import argparse
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple

__all__ = ["SerializedDynamoDB", "main"]

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class SerializedDynamoDB:
    """WSGI middleware: one DynamoDB request at a time (its X-Amz-Target names the DynamoDB API)."""

    def __init__(self, app: WsgiApp) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_"):
            return self._app(environ, start_response)
        with self._lock:
            return list(self._app(environ, start_response))  # the whole answer is made inside the lock


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="moto's server, DynamoDB requests serialized")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args(argv)
    os.environ.setdefault("MOTO_PORT", str(args.port))  # as moto's own server sets it (URLs it hands out)
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, SerializedDynamoDB(app), threaded=True)


if __name__ == "__main__":
    main()
