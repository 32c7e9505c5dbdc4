"""Notifications in the simulation (DESIGN 8, property 14 of the checks): what happens to a seed's events after the
sagas ran, owned by the simulation so that it is the seed's to decide.

Per seed:
- a merchant webhook endpoint on a real loopback receiver (`Receiver`, a threaded HTTP server) that answers a seeded
  share of requests 500 or too late (a timeout), registered for the seed's merchant (loopback allowed);
- a subscriber of the SNS topic (an SQS queue, raw delivery) and an EventBridge rule on the bus (every event of
  source `paysaga.payments`) targeting an SQS queue, read at the end;
- the outbox relay (rows NotifyMerchant never published, ParkNotification's included, are published), then the
  consumer (`saga.notifications.consumer.process`) run over the notifications queue with crashes drawn from a random
  stream of its own: a crash mid-message (after the webhook hand-off, after SNS, after EventBridge: some targets took
  it) leaves the message and the rest of its batch undeleted; they come back (visibility reset to 0: the simulation
  moves time instead of waiting) and are processed again;
- the DLQ redriven when a message landed there (its batches crashed too often) and the queue consumed again;
- `deliver_due` on a manual clock advanced to each next attempt of the retry schedule until nothing is due.

Where the stack also runs a notification worker (the test suite's live stack), it may take some messages first; what
it took shows on the SNS subscriber, and its webhook deliveries are the same rows this sender sends: the property is
checked from the targets either way.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from sqlalchemy import text

from core import event_rules
from core.aws import client
from core.aws_resources import queue_url, topic_arn
from local.notifications_dlq import redrive
from local.simulate.world import Backends
from saga.notifications.consumer import Targets, process
from saga.notifications.relay import relay
from saga.notifications.webhooks import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    USER_AGENT,
    create_endpoint,
    deliver_due,
    enqueue_deliveries,
    remove_endpoint,
    resend_failed,
)

ENDPOINT_FAIL_500 = 0.2  # the share of webhook requests the merchant's endpoint answers 500
ENDPOINT_TIMEOUT = 0.1  # ... and answers too late
WEBHOOK_TIMEOUT_MS = 300  # the sender's timeout in the simulation; a late answer comes after LATE_S
LATE_S = 0.6
CRASH_PROBABILITY = 0.25  # per batch the consumer receives: it dies while handling one of its messages
CRASH_POINTS = ("webhooks", "sns", "events")  # crash right after this target took the event
MAX_CONSUMER_ROUNDS = 200
MAX_DELIVERY_ROUNDS = 300
MAX_RESENDS = 3
IN_FLIGHT_WAIT_S = 40.0  # a message another consumer holds comes back after the visibility timeout (30 s)
POLL_S = 0.1


class ConsumerCrash(BaseException):
    """The consumer's process died mid-message (BaseException: nothing in the consumer may catch it)."""


@dataclass(frozen=True)
class Request:
    event_id: str  # the Paysaga-Event-Id header
    body: bytes
    signature: str
    answer: str  # "200", "500" or "timeout"


class Receiver:
    """A merchant's webhook endpoint on loopback: records every request, fails a seeded share of them. The answer to
    the n-th request of an event is drawn from (seed, event id, n): the same whatever the threads' order."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                answer = receiver.take(Request(str(self.headers.get(EVENT_ID_HEADER)), body,
                                               str(self.headers.get(SIGNATURE_HEADER)), ""))
                if answer == "timeout":  # past the simulation's sender's timeout; then a failure anyway, so a
                    time.sleep(LATE_S)   # sender that waits longer (a stack's worker) sees a failed attempt too
                code = 200 if answer == "200" else 500
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender gave up waiting

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/sim-{seed}"
        self._thread = threading.Thread(target=self.server.serve_forever, name=f"sim-endpoint-{seed}", daemon=True)
        self._thread.start()

    def take(self, request: Request) -> str:
        with self._lock:
            n = self._counts.get(request.event_id, 0)
            self._counts[request.event_id] = n + 1
            draw = random.Random(f"endpoint-{self.seed}-{request.event_id}-{n}").random()  # noqa: S311
            answer = "500" if draw < ENDPOINT_FAIL_500 else \
                "timeout" if draw < ENDPOINT_FAIL_500 + ENDPOINT_TIMEOUT else "200"
            self.requests.append(Request(request.event_id, request.body, request.signature, answer))
            return answer

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Crashing:
    """A target client whose process dies right after the call named `point` succeeded, when armed."""

    def __init__(self, inner: Any, method: str, point: str, run: NotificationRun) -> None:
        self._inner, self._method, self._point, self._run = inner, method, point, run

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if name != self._method:
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            answer = attribute(*args, **kwargs)
            self._run.maybe_crash(self._point)
            return answer
        return call


@dataclass
class NotificationRun:
    backends: Backends
    seed: int
    merchant_id: str
    rng: random.Random = field(init=False)
    receiver: Receiver = field(init=False)
    endpoint_id: str = field(init=False)
    secret: str = field(init=False, repr=False)
    # What the simulation's consumer received from the queue, each SQS message once (its first receipt).
    received: list[dict[str, Any]] = field(default_factory=list)
    sns: list[dict[str, Any]] = field(default_factory=list)  # the SNS subscriber's messages (event JSON)
    events: list[dict[str, Any]] = field(default_factory=list)  # the EventBridge rule's (whole events)
    crashes: int = 0
    resent: int = 0  # deliveries resent after they failed every attempt
    redriven: int = 0  # messages moved back from the DLQ (a message whose batches crashed too often lands there)
    relayed: int = 0
    deliveries: int = 0
    ran: bool = False
    closed: bool = False
    _armed: str | None = None

    def __post_init__(self) -> None:
        self.rng = random.Random(f"notifications-{self.seed}")  # noqa: S311  # a stream of its own
        self.receiver = Receiver(self.seed)
        with self.backends.engine.begin() as conn:
            endpoint, self.secret = create_endpoint(conn, merchant_id=self.merchant_id, url=self.receiver.url,
                                                    allow_loopback=True)
        self.endpoint_id = endpoint.id
        settings = self.backends.settings
        sqs = self.backends.sqs
        self._sns_client = client("sns", settings)
        self._events_client = client("events", settings)
        self._topic = topic_arn(self._sns_client, settings.notifications_topic)
        self.sns_queue, sns_arn = self._queue(f"paysaga-sim-sns-{self.seed}")
        self.subscription = self._sns_client.subscribe(
            TopicArn=self._topic, Protocol="sqs", Endpoint=sns_arn, ReturnSubscriptionArn=True,
            Attributes={"RawMessageDelivery": "true"})["SubscriptionArn"]
        self.events_queue, events_arn = self._queue(f"paysaga-sim-events-{self.seed}")
        self.rule = f"paysaga-sim-{self.seed}"
        self._events_client.put_rule(Name=self.rule, EventBusName=settings.event_bus,
                                     EventPattern=json.dumps({"source": [event_rules.SOURCE]}))
        self._events_client.put_targets(Rule=self.rule, EventBusName=settings.event_bus,
                                        Targets=[{"Id": "sim", "Arn": events_arn}])
        self.queue = queue_url(sqs, settings.notifications_queue)

    def _queue(self, name: str) -> tuple[str, str]:
        sqs = self.backends.sqs
        url: str = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, arn

    # -- the consumer, with crashes ---------------------------------------------------------------------------------

    def maybe_crash(self, point: str) -> None:
        if self._armed == point:
            self._armed = None
            self.crashes += 1
            raise ConsumerCrash(f"the consumer died after {point} took the event")

    def _targets(self) -> Targets:
        engine = self.backends.engine

        def webhooks(conn: Any, event: Any) -> int:
            made = enqueue_deliveries(conn, event)
            self.maybe_crash("webhooks")  # inside the transaction: the hand-off rolls back
            return made

        return Targets(engine=engine, sns=_Crashing(self._sns_client, "publish", "sns", self),
                       topic_arn=self._topic, events=_Crashing(self._events_client, "put_events", "events", self),
                       event_bus=self.backends.settings.event_bus, webhooks=webhooks)

    def _queue_empty(self) -> bool:
        attributes = self.backends.sqs.get_queue_attributes(QueueUrl=self.queue, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return all(attributes.get(name, "0") == "0" for name in (
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"))

    def consume(self) -> None:
        """Relay, then consume the queue (with crashes) until it is empty and nothing is in flight."""
        sqs = self.backends.sqs
        targets = self._targets()
        seen: set[str] = set()
        redriven: set[str] = set()
        deadline = time.monotonic() + IN_FLIGHT_WAIT_S
        for _ in range(MAX_CONSUMER_ROUNDS):
            while (published := relay(self.backends.engine, sqs, self.queue, older_than_ms=0)) > 0:
                self.relayed += published
            batch = sqs.receive_message(QueueUrl=self.queue, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                        AttributeNames=["MessageGroupId"]).get("Messages", [])
            if not batch:
                if self._queue_empty() or time.monotonic() > deadline:
                    back = redrive(sqs, self.backends.settings)  # what an engineer does: `paysaga events dlq redrive`
                    if not back:
                        return
                    self.redriven += len(back)
                    redriven.update(str(d.event_id) for d in back)
                else:
                    time.sleep(POLL_S)  # another consumer holds some in flight
                continue
            for message in batch:
                if message["MessageId"] not in seen:
                    seen.add(message["MessageId"])
                    body = json.loads(message["Body"])
                    if str(body.get("id")) not in redriven:  # a redriven copy is no second publication
                        self.received.append(body)
            self._handle(batch, targets)

    def _handle(self, batch: list[dict[str, Any]], targets: Targets) -> None:
        sqs = self.backends.sqs
        stopped: set[str] = set()  # a group whose message failed: its later messages wait (FIFO order)
        crash_at = self.rng.randrange(len(batch)) if self.rng.random() < CRASH_PROBABILITY else None
        for index, message in enumerate(batch):
            group = str(message.get("Attributes", {}).get("MessageGroupId", ""))
            if group in stopped:
                self._back(message)
                continue
            if index == crash_at:
                self._armed = self.rng.choice(CRASH_POINTS)
            try:
                process(targets, message["Body"])
            except ConsumerCrash:
                for lost in batch[index:]:  # the process died: nothing of the batch is deleted; all comes back
                    self._back(lost)
                return
            except Exception:  # a failed record comes back, the batch goes on (as the worker does)
                stopped.add(group)
                self._back(message)
                continue
            finally:
                self._armed = None
            sqs.delete_message(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"])

    def _back(self, message: dict[str, Any]) -> None:
        """The message's visibility timeout passes (the simulation moves time instead of waiting)."""
        self.backends.sqs.change_message_visibility(QueueUrl=self.queue, ReceiptHandle=message["ReceiptHandle"],
                                                    VisibilityTimeout=0)

    # -- the webhook sender on a manual clock -------------------------------------------------------------------------

    def deliver(self) -> None:
        """Send what is due, the clock moved to each next attempt, until nothing is pending. A delivery that failed
        every attempt of the schedule (the endpoint failed WEBHOOK_MAX_ATTEMPTS times in a row: an alarm's case) is
        resent as an engineer would (`resend_failed`), at most MAX_RESENDS times."""
        clock = [int(datetime.now(UTC).timestamp() * 1000)]
        with httpx.Client(headers={"User-Agent": USER_AGENT}) as http:
            for _ in range(1 + MAX_RESENDS):
                self._deliver_pending(http, clock)
                with self.backends.engine.begin() as conn:
                    again = resend_failed(conn, self.endpoint_id, clock=lambda: clock[0])
                if not again:
                    return
                self.resent += len(again)

    def _deliver_pending(self, http: httpx.Client, clock: list[int]) -> None:
        for _ in range(MAX_DELIVERY_ROUNDS):
            report = deliver_due(self.backends.engine, http=http, clock=lambda: clock[0], allow_loopback=True,
                                 timeout_ms=WEBHOOK_TIMEOUT_MS, jitter=self.rng.random)
            self.deliveries += report.claimed
            if report.claimed:
                continue
            with self.backends.engine.connect() as conn:
                due = conn.execute(text(
                    "SELECT min(next_attempt_at) FROM webhook_deliveries"
                    " WHERE endpoint_id = :e AND status = 'pending'"), {"e": self.endpoint_id}).scalar()
            if due is None:
                return
            clock[0] = max(clock[0] + 1, int(due.timestamp() * 1000))  # to the next attempt of the schedule

    # -- the targets, read at the end ----------------------------------------------------------------------------------

    def _drain(self, url: str) -> list[dict[str, Any]]:
        sqs = self.backends.sqs
        bodies: list[dict[str, Any]] = []
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0
                                           ).get("Messages", []):
            for message in batch:
                bodies.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return bodies

    def run(self) -> None:
        try:
            self.consume()
            self.deliver()
            self.sns = self._drain(self.sns_queue)
            self.events = self._drain(self.events_queue)
            self.ran = True
        finally:
            self.close()

    def close(self) -> None:
        """Nothing of this seed stays on the shared stack: the endpoint disabled, the subscriptions removed."""
        if self.closed:
            return
        self.closed = True
        self.receiver.close()
        with self.backends.engine.begin() as conn:
            remove_endpoint(conn, endpoint_id=self.endpoint_id)
        settings = self.backends.settings
        self._sns_client.unsubscribe(SubscriptionArn=self.subscription)
        self._events_client.remove_targets(Rule=self.rule, EventBusName=settings.event_bus, Ids=["sim"])
        self._events_client.delete_rule(Name=self.rule, EventBusName=settings.event_bus)
        for url in (self.sns_queue, self.events_queue):
            self.backends.sqs.delete_queue(QueueUrl=url)

    def signature_ok(self, request: Request) -> bool:
        parts: dict[str, str] = {}
        for part in request.signature.split(","):
            name, _, value = part.partition("=")
            parts.setdefault(name, value)
        signed = parts.get("t", "").encode() + b"." + request.body
        expected = hmac.new(self.secret.encode(), signed, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, parts.get("v1", ""))
