"""The emulator serves DynamoDB requests one at a time (the atomicity of conditional writes DynamoDB has and moto's
server lacks) and every other service's concurrently."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from local.stack.moto_server import SerializedDynamoDB

CALLERS = 8


class CountingApp:
    """A WSGI app that records how many requests it holds at once. Each request waits, at most HOLD_S, for a second
    one to join it: concurrent requests meet at once; serialized ones never do."""

    HOLD_S = 0.05

    def __init__(self) -> None:
        self._met = threading.Condition()
        self.inside = 0
        self.most_inside = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self._met:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
            self._met.notify_all()
            self._met.wait_for(lambda: self.most_inside > 1, timeout=self.HOLD_S)
            self.inside -= 1
        start_response("200 OK", [])
        return [b"{}"]


def _most_at_once(target: str | None) -> int:
    app = CountingApp()
    served = SerializedDynamoDB(app)
    environ = {"HTTP_X_AMZ_TARGET": target} if target else {}
    barrier = threading.Barrier(CALLERS)

    def call() -> None:
        barrier.wait(timeout=10)
        assert list(served(dict(environ), lambda *_: None)) == [b"{}"]

    threads = [threading.Thread(target=call) for _ in range(CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return app.most_inside


def test_dynamodb_requests_are_served_one_at_a_time() -> None:
    assert _most_at_once("DynamoDB_20120810.PutItem") == 1


def test_other_services_stay_concurrent() -> None:
    assert _most_at_once("AmazonSQS.SendMessage") > 1
    assert _most_at_once(None) > 1  # query-protocol services (SNS, SQS's older API) carry no target
