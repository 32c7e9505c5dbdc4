"""A throwaway local Adyen server (local/adyen/server.py) for tests and benchmarks: its own process, port, SQLite
file and API key. A server that cannot start raises (with the end of its log): the tests that need it error, never
skip. Also a webhook receiver (``running_webhook_receiver``) to point the server's ``webhook_url`` at."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from local.adyen.server import DEFAULT_MERCHANT_ACCOUNT
from local.stack.process import LOOPBACK, StackError, free_port, terminate, wait_for_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0
LOG_TAIL_CHARS = 2_000


@dataclass(frozen=True)
class AdyenServer:
    base_url: str  # give it to the adapter as checkout_url (it adds /v71)
    api_key: str
    merchant_account: str
    hmac_key: str | None
    log_path: Path


def _log_tail(log_path: Path) -> str:
    try:
        return log_path.read_text(errors="replace")[-LOG_TAIL_CHARS:]
    except OSError:
        return "(no log)"


@contextlib.contextmanager
def running_adyen_server(
    *,
    db_dir: Path,
    webhook_url: str | None = None,
    hmac_key: str | None = None,
    settle_after_ms: int | None = None,
) -> Iterator[AdyenServer]:
    """Start a local Adyen server on a free loopback port with its state in ``db_dir``; stop it on exit."""
    db_dir.mkdir(parents=True, exist_ok=True)
    port, api_key = free_port(), f"test_{secrets.token_urlsafe(16)}"
    log_path = db_dir / "adyen-server.log"
    command = [
        sys.executable, "-m", "local.adyen.server", "--host", LOOPBACK, "--port", str(port),
        "--db", str(db_dir / "adyen.db"), "--merchant-account", DEFAULT_MERCHANT_ACCOUNT,
    ]  # fmt: skip
    if webhook_url is not None:
        command += ["--webhook-url", webhook_url]
    # The keys go by environment, as the local stack passes them: never on a command line.
    env = {name: value for name, value in os.environ.items() if name not in ("ADYEN_API_KEY", "ADYEN_HMAC_KEY")}
    env["ADYEN_API_KEY"] = api_key
    if hmac_key is not None:
        env["ADYEN_HMAC_KEY"] = hmac_key
    if settle_after_ms is not None:
        command += ["--settle-after-ms", str(settle_after_ms)]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True,
        )
    try:
        try:
            wait_for_port(port, "local Adyen server", pid=process.pid, timeout_s=START_TIMEOUT_S)
        except StackError as failed:
            raise StackError(f"{failed}; its log ({log_path}) ends:\n{_log_tail(log_path)}") from failed
        yield AdyenServer(
            base_url=f"http://{LOOPBACK}:{port}",
            api_key=api_key,
            merchant_account=DEFAULT_MERCHANT_ACCOUNT,
            hmac_key=hmac_key,
            log_path=log_path,
        )
    finally:
        terminate(process.pid)
        process.wait()


# --- a webhook receiver ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One webhook POST the receiver got, and the status it answered."""

    body: bytes
    headers: dict[str, str]  # lower-case names
    status: int


# Decides the answer to one delivery: True → 200 "[accepted]" (what Adyen expects), False → 400.
Accept = Callable[[bytes, Mapping[str, str]], bool]


class WebhookReceiver:
    """A tiny HTTP server taking webhook POSTs on a loopback port, in a thread. ``refuse_next(n)`` answers the next
    n deliveries 500 (Adyen retries them); ``wait_for`` blocks until a condition on the deliveries holds. Not a
    checker: ``accept`` decides (e.g. the adapter's read_webhook), else every delivery is accepted."""

    def __init__(self, accept: Accept | None = None) -> None:
        self._accept = accept
        self._changed = threading.Condition()
        self._deliveries: list[Delivery] = []
        self._refusals = 0
        self._refuse_only: Callable[[bytes], bool] | None = None
        self._server = ThreadingHTTPServer((LOOPBACK, free_port()), self._handler_class())
        self._server.daemon_threads = True
        self.url = f"http://{LOOPBACK}:{self._server.server_port}/webhooks/adyen"

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver._answer(body, {name.lower(): value for name, value in self.headers.items()})
                payload = b"[accepted]" if status == 200 else b"refused"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                pass  # quiet: tests read the deliveries, not a log

        return Handler

    def _answer(self, body: bytes, headers: dict[str, str]) -> int:
        with self._changed:
            refuse = self._refusals > 0 and (self._refuse_only is None or self._refuse_only(body))
            self._refusals -= 1 if refuse else 0
        status = 500 if refuse else 200 if self._accept is None or self._accept(body, headers) else 400
        with self._changed:
            self._deliveries.append(Delivery(body=body, headers=headers, status=status))
            self._changed.notify_all()
        return status

    def refuse_next(self, count: int, only: Callable[[bytes], bool] | None = None) -> None:
        """Answer 500 to the next ``count`` deliveries (of those whose body ``only`` picks, when given)."""
        with self._changed:
            self._refusals, self._refuse_only = count, only

    @property
    def deliveries(self) -> list[Delivery]:
        with self._changed:
            return list(self._deliveries)

    def notify(self) -> None:
        """Wake ``wait_for`` callers (when what their condition reads changed elsewhere)."""
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, condition: Callable[[list[Delivery]], bool], timeout_s: float = 10.0) -> list[Delivery]:
        """The deliveries once ``condition(deliveries)`` holds; TimeoutError (listing them) if it does not in time."""
        with self._changed:
            if not self._changed.wait_for(lambda: condition(self._deliveries), timeout=timeout_s):
                got = [(d.status, d.body[:200]) for d in self._deliveries]
                raise TimeoutError(f"no webhook delivery met the condition within {timeout_s} s; got {got}")
            return list(self._deliveries)

    def start(self) -> None:
        # A short poll keeps stop() quick (shutdown waits for the serving loop to look).
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="webhook-receiver", daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextlib.contextmanager
def running_webhook_receiver(accept: Accept | None = None) -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver(accept)
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
