"""Drive N payments through the HTTP API with C concurrent checkouts (one keep-alive client per thread), and the
same for the SQL replay; both return per-payment latencies and the wall-clock time of the whole batch."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from ulid import ULID


@dataclass
class Batch:
    concurrency: int
    wall_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    payment_ids: list[int] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    response_bytes: list[int] = field(default_factory=list)

    @property
    def per_s(self) -> float:
        return len(self.latencies_ms) / self.wall_s


def _run(count: int, concurrency: int, make_worker: Callable[[], Callable[[], tuple[float, int | None, str, int]]],
         ) -> Batch:
    batch = Batch(concurrency)
    lock = threading.Lock()
    remaining = [count]
    barrier = threading.Barrier(concurrency + 1)
    errors: list[BaseException] = []

    def thread() -> None:
        try:
            work = make_worker()
        except BaseException as error:
            errors.append(error)
            barrier.abort()
            return
        barrier.wait()
        while True:
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            try:
                latency_ms, payment_id, failure, size = work()
            except BaseException as error:  # counted, never hidden: the report prints failures
                latency_ms, payment_id, failure, size = 0.0, None, repr(error)[:200], 0
            with lock:
                if failure:
                    batch.failures.append(failure)
                else:
                    batch.latencies_ms.append(latency_ms)
                    batch.payment_ids.append(payment_id or 0)
                    batch.response_bytes.append(size)

    threads = [threading.Thread(target=thread, daemon=True) for _ in range(concurrency)]
    for t in threads:
        t.start()
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        raise RuntimeError(f"a worker could not start: {errors[0]!r}") from errors[0]
    started = time.perf_counter()
    for t in threads:
        t.join()
    batch.wall_s = time.perf_counter() - started
    return batch


def http_batch(api_url: str, api_key: str, count: int, concurrency: int, timeout_s: float = 120) -> Batch:
    def make_worker() -> Callable[[], tuple[float, int | None, str, int]]:
        client = httpx.Client(base_url=api_url, timeout=timeout_s,
                              headers={"Authorization": f"Bearer {api_key}"})

        def pay() -> tuple[float, int | None, str, int]:
            body = {"amount_minor": 1999, "currency": "EUR", "payment_method_token": "tok_approve",
                    "customer_reference": f"cus_{ULID()}", "order_reference": f"ord_{ULID()}"}
            started = time.perf_counter()
            response = client.post("/v1/payments", json=body, headers={"Idempotency-Key": str(ULID())})
            latency_ms = (time.perf_counter() - started) * 1000
            if response.status_code != 201:
                return latency_ms, None, f"{response.status_code} {response.text[:200]}", 0
            headers_bytes = sum(len(k) + len(v) for k, v in response.headers.items())
            return latency_ms, int(response.json()["id"]), "", len(response.content) + headers_bytes

        return pay

    return _run(count, concurrency, make_worker)


def replay_batch(make_replayer: Callable[[], object], count: int, concurrency: int) -> Batch:
    """make_replayer() -> an object with run() -> new payment id and close()."""
    opened: list[object] = []
    lock = threading.Lock()

    def make_worker() -> Callable[[], tuple[float, int | None, str, int]]:
        replayer = make_replayer()
        with lock:
            opened.append(replayer)

        def replay() -> tuple[float, int | None, str, int]:
            started = time.perf_counter()
            new_id = replayer.run()  # type: ignore[attr-defined]
            return (time.perf_counter() - started) * 1000, int(new_id), "", 0

        return replay

    try:
        return _run(count, concurrency, make_worker)
    finally:
        for replayer in opened:
            replayer.close()  # type: ignore[attr-defined]
