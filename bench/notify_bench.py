"""NotifyMerchant as a run goes on, with and without the notifications consumer draining the queue, in one run.

Issue figure (saga bench, 16 concurrent checkouts): NotifyMerchant took 25 ms at 1 checkout and 480 ms at 16, because
nothing read the notifications queue and the FIFO queue grew without end. Here one stack runs the same load twice:
first with its notifications worker stopped (the queue only grows), then with it running (local/notification_worker:
the consumer, the relay and webhook deliveries); each phase is a few consecutive batches at 16 concurrent checkouts,
and NotifyMerchant's median per batch (from each execution's history) shows whether it climbs as the queue grows.

    .venv/bin/python bench/notify_bench.py [--batches 3] [--payments 96] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import history as hist
from report.load import http_batch

from core.aws import client
from core.aws_resources import queue_url
from core.settings import load_settings
from local.stack.process import terminate
from local.stack.state import load, save
from local.testing.live import LiveStack, live_stack

STEP = "NotifyMerchant"
DRAIN_TIMEOUT_S = 120.0


def notify_median_ms(stack: LiveStack, payment_ids: list[int]) -> float:
    with stack.engine.connect() as conn:
        histories = conn.execute(text("SELECT history FROM saga_executions WHERE payment_id = ANY(:ids)"),
                                 {"ids": payment_ids}).scalars().all()
    found = [d[STEP] for d in (hist.step_durations_ms(h) for h in histories) if STEP in d]
    return statistics.median(found)


def use_stack_env(stack: LiveStack) -> None:
    """This process talks to the stack's emulator as the stack's own processes do."""
    for line in stack.cli("stack", "env").stdout.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        os.environ[name] = value.strip("'")


def queue_depth(stack: LiveStack) -> int:
    settings = load_settings()
    sqs = client("sqs", settings)
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url(sqs, settings.notifications_queue),
                                          AttributeNames=["ApproximateNumberOfMessages",
                                                          "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def stop_worker(stack: LiveStack) -> None:
    state = load(stack.root)
    part = state.parts.pop("notifications", None)
    if part is not None and part.pid is not None:
        terminate(part.pid)
    save(stack.root, state)


def phase(stack: LiveStack, api_key: str, *, batches: int, payments: int, concurrency: int) -> list[tuple[float, int]]:
    """(NotifyMerchant median ms, queue depth after) per batch."""
    rows = []
    for _ in range(batches):
        batch = http_batch(stack.api_url, api_key, payments, concurrency)
        assert not batch.failures, batch.failures[:3]
        rows.append((notify_median_ms(stack, batch.payment_ids), queue_depth(stack)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--payments", type=int, default=96)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    console = Console()
    with live_stack() as stack:
        _, api_key = stack.new_merchant()
        use_stack_env(stack)
        stop_worker(stack)
        undrained = phase(stack, api_key, batches=args.batches, payments=args.payments, concurrency=args.concurrency)
        stack.cli("stack", "up")  # starts the worker again: it drains what the first phase left
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while queue_depth(stack) and time.monotonic() < deadline:
            time.sleep(1)
        drained = phase(stack, api_key, batches=args.batches, payments=args.payments, concurrency=args.concurrency)

    table = Table(title=f"{STEP} median per batch of {args.payments} payments at {args.concurrency} concurrent "
                        "checkouts (one stack, one run)")
    for column in ("batch", "no consumer: ms", "queue after", "consumer running: ms", "queue after"):
        table.add_column(column, justify="right")
    for index, ((before_ms, before_depth), (after_ms, after_depth)) in enumerate(zip(undrained, drained,
                                                                                       strict=True), start=1):
        table.add_row(str(index), f"{before_ms:.1f}", str(before_depth), f"{after_ms:.1f}", str(after_depth))
    console.print(table)
    growth_before = undrained[-1][0] / undrained[0][0]
    growth_after = drained[-1][0] / drained[0][0]
    console.print(f"last batch / first batch: {growth_before:.2f} without the consumer, {growth_after:.2f} with it; "
                  f"median of all batches {statistics.median(m for m, _ in undrained):.1f} ms vs "
                  f"{statistics.median(m for m, _ in drained):.1f} ms")


if __name__ == "__main__":
    main()
