"""The local stack's notification worker: what the queue's Lambda event source, the relay's schedule and the webhook
delivery schedule do on AWS, in one process.

- Long-polls the emulator's notifications queue (ReceiveMessage, WaitTimeSeconds) and hands each message to the same
  `saga.notifications.consumer.process` the Lambda runs; a message is deleted only after it succeeded (every target
  took it). A failed message is left in the queue (its group's later messages too, as the FIFO processor does on
  AWS) and comes back after `retry_after_s`; after `limits.NOTIFICATIONS_MAX_RECEIVES` receives SQS moves it to the
  DLQ. Killed at any point, it loses nothing: what it did not delete comes back.
- On a thread of its own: every `relay_every_ms` one outbox relay pass (`saga.notifications.relay.relay`), every
  `deliver_every_ms` one webhook delivery pass (`saga.notifications.webhooks.deliver_due`).

Run: ``python -m local.notification_worker [--relay-every-ms N] [--deliver-every-ms N] [--grace-ms N]
[--retry-after-s N]``; stops on
SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx

from core import limits
from core.aws import client
from core.aws_resources import queue_url
from core.settings import Settings, settings
from local.stack.process import stop_on_signals
from saga.notifications.consumer import Targets, process, targets_for
from saga.notifications.relay import relay
from saga.notifications.webhooks import USER_AGENT, deliver_due

_log = logging.getLogger("paysaga.notifications")


@dataclass
class Worker:
    settings: Settings
    targets: Targets
    sqs: Any
    queue: str
    retry_after_s: int = 5

    @classmethod
    def make(cls, now: Settings, *, retry_after_s: int = 5) -> Worker:
        sqs = client("sqs", now)
        return cls(settings=now, targets=targets_for(now), sqs=sqs, queue=queue_url(sqs, now.notifications_queue),
                   retry_after_s=retry_after_s)

    def poll_once(self, wait_s: int = limits.NOTIFICATIONS_POLL_WAIT_S) -> tuple[int, int]:
        """Receive one batch and process it; (delivered, failed)."""
        batch = self.sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10, WaitTimeSeconds=wait_s,
                                         AttributeNames=["MessageGroupId", "ApproximateReceiveCount"]
                                         ).get("Messages", [])
        delivered = failed = 0
        stopped_groups: set[str] = set()
        for message in batch:
            group = str(message.get("Attributes", {}).get("MessageGroupId", ""))
            if group in stopped_groups:  # keep the group's order: its earlier message failed
                self._retry_later(message)
                failed += 1
                continue
            try:
                process(self.targets, message["Body"])
            except Exception as error:  # any failure: the message comes back, the batch goes on
                _log.warning("notification %s not delivered (receive %s): %s: %s", message["MessageId"],
                             message.get("Attributes", {}).get("ApproximateReceiveCount"),
                             type(error).__name__, error)
                stopped_groups.add(group)
                self._retry_later(message)
                failed += 1
                continue
            self.sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])
            delivered += 1
        return delivered, failed

    def _retry_later(self, message: dict[str, Any]) -> None:
        self.sqs.change_message_visibility(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"],
                                           VisibilityTimeout=self.retry_after_s)

    def relay_once(self, *, grace_ms: int) -> int:
        """One outbox relay pass."""
        return relay(self.targets.engine, self.sqs, self.queue, older_than_ms=grace_ms)

    def deliver_once(self, http: httpx.Client) -> int:
        """One webhook delivery pass (the deliveries due now); how many were claimed."""
        report = deliver_due(self.targets.engine, http=http, allow_loopback=self.settings.webhooks_allow_loopback,
                             timeout_ms=self.settings.webhook_timeout_ms)
        return report.claimed


def _periodic(worker: Worker, *, relay_every_ms: int, deliver_every_ms: int, grace_ms: int,
              stop: threading.Event) -> None:
    """The schedules of AWS (the relay's, the webhook sender's), on a thread of their own: a slow merchant endpoint
    never holds up the queue's consumer."""
    next_relay = 0.0
    with httpx.Client(headers={"User-Agent": USER_AGENT}) as http:
        while not stop.is_set():
            try:
                if time.monotonic() >= next_relay:
                    next_relay = time.monotonic() + relay_every_ms / 1000
                    worker.relay_once(grace_ms=grace_ms)
                while worker.deliver_once(http) >= limits.WEBHOOK_BATCH and not stop.is_set():
                    pass  # a full batch: more may be due
            except Exception:  # a backend restarting must not end the worker
                _log.exception("relay or webhook delivery pass failed; the next one tries again")
            stop.wait(deliver_every_ms / 1000)


def run(*, relay_every_ms: int, deliver_every_ms: int, grace_ms: int, retry_after_s: int,
        stop: threading.Event) -> None:
    worker = Worker.make(settings(), retry_after_s=retry_after_s)
    schedules = threading.Thread(target=_periodic, name="schedules", daemon=True, kwargs={
        "worker": worker, "relay_every_ms": relay_every_ms, "deliver_every_ms": deliver_every_ms,
        "grace_ms": grace_ms, "stop": stop})
    schedules.start()
    while not stop.is_set():
        try:
            worker.poll_once()
        except Exception:  # a backend restarting must not end the worker
            _log.exception("notification worker pass failed; the next one tries again")
            stop.wait(1)
    schedules.join(timeout=2)  # a pass cut short is safe: every step of it is at least once


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="paysaga local notification worker")
    parser.add_argument("--relay-every-ms", type=int, default=limits.OUTBOX_RELAY_INTERVAL_MS)
    parser.add_argument("--deliver-every-ms", type=int, default=1_000,
                        help="how often due webhook deliveries are sent (AWS: once a minute)")
    parser.add_argument("--grace-ms", type=int, default=limits.OUTBOX_RELAY_GRACE_MS)
    parser.add_argument("--retry-after-s", type=int, default=5)
    args = parser.parse_args(argv)
    stop = stop_on_signals()
    logging.basicConfig(level=logging.INFO)
    run(relay_every_ms=args.relay_every_ms, deliver_every_ms=args.deliver_every_ms, grace_ms=args.grace_ms,
        retry_after_s=args.retry_after_s, stop=stop)


if __name__ == "__main__":
    main()
