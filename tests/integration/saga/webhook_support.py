"""A merchant's webhook receiver on loopback (a real HTTP server in a thread), the scheme a merchant verifies our
signature with (README, "Merchant webhooks"), and an event to deliver."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sqlalchemy import Connection
from ulid import ULID

from store.outbox import OutboxEvent, event_by_id, insert_event
from tests.integration.store.support import make_merchant, make_payment

TOLERANCE_S = 300


def verify(header: str, body: bytes, secret: str, *, now: float | None = None) -> bool:
    """Exactly what README tells a merchant to do: split the header, recompute the HMAC over "<t>.<body>", compare
    with each v1 in constant time, refuse a timestamp more than 300 s away."""
    items = [part.split("=", 1) for part in header.split(",")]
    timestamps = [value for key, value in items if key == "t"]
    signatures = [value for key, value in items if key == "v1"]
    if len(timestamps) != 1 or not signatures:
        return False
    t = timestamps[0]
    if abs((time.time() if now is None else now) - int(t)) > TOLERANCE_S:
        return False
    expected = hmac.new(secret.encode(), f"{t}.{body.decode()}".encode(), hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, signature) for signature in signatures)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    url: str
    answers: list[int]  # the status of each request in turn; the last one repeats
    delay_s: float = 0.0
    requests: list[Received] = field(default_factory=list)


@contextlib.contextmanager
def receiver(answers: list[int], *, delay_s: float = 0.0) -> Iterator[Receiver]:
    state = Receiver(url="", answers=list(answers), delay_s=delay_s)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                state.requests.append(Received(dict(self.headers.items()), body, time.time()))
                index = len(state.requests) - 1
                status = state.answers[min(index, len(state.answers) - 1)]
            if state.delay_s:
                time.sleep(state.delay_s)
            with contextlib.suppress(OSError):  # the sender may have given up already
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/paysaga"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def make_event(conn: Connection, *, merchant_id: str | None = None) -> OutboxEvent:
    """A committed payment's event of a merchant (a new merchant unless named)."""
    merchant_id = merchant_id or make_merchant(conn)
    payment_id = make_payment(conn, merchant_id=merchant_id, amount_minor=1_999, currency="EUR")
    event_id = str(ULID())
    assert insert_event(conn, event_id=event_id, payment_id=payment_id, event_type="payment.succeeded",
                        payload={"id": str(payment_id), "merchant_id": merchant_id, "amount_minor": 1_999,
                                 "currency": "EUR", "status": "succeeded"}).applied
    event = event_by_id(conn, event_id=event_id)
    assert event is not None
    return event


class Clock:
    """An injectable wall clock in milliseconds that a test moves by hand."""

    def __init__(self) -> None:
        self.ms = time.time_ns() // 1_000_000

    def __call__(self) -> int:
        return self.ms

    def advance(self, *, seconds: float) -> None:
        self.ms += round(seconds * 1000)
