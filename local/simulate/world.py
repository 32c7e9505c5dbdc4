"""The simulation's view of one running local stack: its settings, the pids it may freeze, the clients that read
the truth (database, gateway call log, queue, idempotency table), and the saga wired to the fault injector."""

from __future__ import annotations

import contextlib
import functools
import json
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from ulid import ULID

from core import limits
from core.aws import client
from core.aws_resources import queue_url, topic_arn
from core.db import engine_for
from core.settings import Settings
from local.asl import LocalStepFunctions, ManualClock
from local.aws_names import LOCAL_ACCOUNT, LOCAL_REGION
from local.gateway_views import GatewayViews
from local.saga_runtime import create_operation_machines, create_saga_machine
from local.simulate.faults import Injector, Plan, Where, subject_of
from saga.bootstrap import Services, bootstrap
from saga.execution import PaymentBusyError, run_execution
from saga.replay import ReplayError, replay
from steps.contract import ExecutionInput
from steps.registry import Workflow
from store.operations import get_operation

HTTP_TIMEOUT_S = 10.0
SETTLE_WAIT_S = 10.0  # for a local gateway's webhooks to reach the API (it retries a refused delivery)
SETTLE_POLL_S = 0.05
MAX_QUEUE_BATCHES = 500  # 10 messages each: bounds one drain of the notifications queue
SIM_TAP_QUEUE = "paysaga-sim-tap"  # the simulation's own subscription to the notifications topic
# A message a notification worker holds comes back after the queue's visibility timeout if the worker failed.
QUEUE_IN_FLIGHT_WAIT_S = limits.NOTIFICATIONS_VISIBILITY_TIMEOUT_S + 5


class HolderDiedError(BaseException):
    """The start handler's process died (BaseException: nothing in the handler may catch it)."""


@dataclass
class Backends:
    settings: Settings
    redis_pid: int | None
    aws_pid: int | None
    api_url: str  # the API server: the local gateways' webhooks arrive there, and the simulation's redeliveries

    @functools.cached_property
    def dynamodb(self) -> Any:
        return client("dynamodb", self.settings)

    @functools.cached_property
    def sqs(self) -> Any:
        return client("sqs", self.settings)

    @functools.cached_property
    def http(self) -> httpx.Client:
        return httpx.Client(timeout=HTTP_TIMEOUT_S)

    @property
    def engine(self) -> Engine:
        return engine_for(self.settings.sqlalchemy_url)

    @property
    def admin_dsn(self) -> str:
        return make_url(self.settings.sqlalchemy_url).set(drivername="postgresql").render_as_string(
            hide_password=False)

    @functools.cached_property
    def gateways(self) -> GatewayViews:
        """Each local gateway's own record: call log and view of a payment."""
        settings = self.settings
        urls = {name: url.rstrip("/") for name, url in (("sandbox", settings.sandbox_gateway_url),
                                                        ("stripe", settings.stripe_api_base),
                                                        ("adyen", settings.adyen_checkout_url)) if url}
        key = settings.stripe_api_key.get_secret_value() if settings.stripe_api_key else None
        return GatewayViews(urls=urls, stripe_api_key=key, http=self.http)

    def gateway_calls(self, payment_id: str | None = None, gateway: str = "sandbox") -> list[dict[str, Any]]:
        return self.gateways.calls(gateway, payment_id)

    def gateway_snapshot(self, payment_id: str, gateway: str = "sandbox") -> dict[str, Any] | None:
        return self.gateways.snapshot(gateway, payment_id)

    def let_gateway_settle(self, gateway: str, payment_ids: list[int], *, wait_s: float = SETTLE_WAIT_S) -> None:
        """Time passes at an asynchronous gateway (the simulation moves time instead of waiting; the saga's own
        retries run on a manual clock): the local Adyen server settles what is pending for these payments now, and
        its webhooks reach the API. Bounded: a webhook still undelivered after `wait_s` is left to the checks."""
        if gateway != "adyen":
            return  # the sandbox and Stripe answer every lookup from their own state
        base = self.gateways.urls["adyen"]
        for payment_id in payment_ids:
            self.http.post(f"{base}/_adyen/settle", params={"payment_id": str(payment_id)})  # 409: nothing pending
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            undelivered = [n for pid in payment_ids
                           for n in self.http.get(f"{base}/_adyen/notifications",
                                                  params={"payment_id": str(pid)}).json()["notifications"]
                           if not n["delivered"]]
            if not undelivered:
                return
            time.sleep(SETTLE_POLL_S)

    def __post_init__(self) -> None:
        self._watch_notifications()

    def _watch_notifications(self) -> str:
        """A queue of the simulation's own on the notifications topic (raw delivery): where the stack's notification
        worker, when one runs (the test suite's live stack), announces what it took from the queue."""
        url: str = self.sqs.create_queue(QueueName=SIM_TAP_QUEUE)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns = client("sns", self.settings)
        sns.subscribe(TopicArn=topic_arn(sns, self.settings.notifications_topic), Protocol="sqs", Endpoint=arn,
                      Attributes={"RawMessageDelivery": "true"})
        return url

    def drain_queue(self) -> list[dict[str, Any]]:
        """Every event published to the notifications queue: what is in it now (received, then deleted), and what a
        notification worker took from it and announced on the topic (each event once: the worker delivers at least
        once). Waits, bounded, for the messages a worker holds in flight to be announced or to come back."""
        queued = drain_queue(self.sqs, self.settings.notifications_queue)
        url = queue_url(self.sqs, self.settings.notifications_queue)
        deadline = time.monotonic() + QUEUE_IN_FLIGHT_WAIT_S
        while time.monotonic() < deadline:
            attributes = self.sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])["Attributes"]
            if attributes.get("ApproximateNumberOfMessagesNotVisible", "0") == "0":
                break
            time.sleep(SETTLE_POLL_S)
        queued += drain_queue(self.sqs, self.settings.notifications_queue)
        ids = {str(m.get("id")) for m in queued}
        for event in drain_queue(self.sqs, SIM_TAP_QUEUE):
            if str(event.get("id")) not in ids:
                ids.add(str(event.get("id")))
                queued.append(event)
        return queued

    def expire_lease(self, payment_id: int) -> None:
        """Time passes for the payment's lease (the simulation moves clocks instead of waiting): a lease held now
        lapses at once, exactly as it would at its expiry, judged by the database's clock."""
        with self.engine.begin() as conn:
            conn.execute(text("UPDATE payments SET lease_expires_at = clock_timestamp()"
                              " WHERE id = :id AND lease_holder IS NOT NULL"), {"id": payment_id})

    def idempotency_item(self, pk: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = self.dynamodb.get_item(TableName=self.settings.idempotency_table,
                                                         Key={"pk": {"S": pk}}, ConsistentRead=True).get("Item")
        return item


@dataclass
class RequestPlan:
    """What happens around the execution of one request (the step faults live in the injector's plan)."""

    faults: Plan = field(default_factory=Plan)  # the step faults, bound to the payment once the start names it
    double_start: bool = False
    holder_crash: str | None = None  # "before" / "after" the execution: the start handler's process dies


class SimStepFunctions:
    """The local runtime with the injecting resolver, plus whole-execution faults: a second, concurrent execution of
    the same input (a client retry of StartSyncExecution), or the start handler dying around the call."""

    def __init__(self, backends: Backends, injector: Injector, seed: int) -> None:
        self._backends = backends
        self._injector = injector
        self.clock = ManualClock(start=datetime.now(UTC))  # retries back off in virtual time: no waiting
        self.local = LocalStepFunctions(injector.resolver, clock=self.clock, rng=random.Random(seed),  # noqa: S311
                                        region=LOCAL_REGION, account=LOCAL_ACCOUNT)
        self.arn = create_saga_machine(self.local, role="paysaga-sim")
        # The operations' machines (capture, cancel, refund) on the same runtime, as `make run` creates them.
        self.machines: dict[Workflow, str] = create_operation_machines(self.local, role="paysaga-sim")
        # The services a twin start or a replay of this runtime uses (a gate on the real clock; no worker slot is
        # claimed: they mint no ids).
        self.services: Services = bootstrap(backends.settings.model_copy(update={"start_answer_budget_ms": 0}),
                                            step_functions=(self, self.arn), operation_machines=self.machines)
        self._lock = threading.Lock()
        self._plans: dict[int, RequestPlan] = {}
        self._pending: dict[int, RequestPlan] = {}  # thread id -> plan of the request that thread is running
        self.double_starts = 0
        self.holder_crashes = 0
        self.twins: list[TwinRun] = []
        self._twin_threads: list[threading.Thread] = []
        injector.twin_hook = self._twin_at_step

    def close(self) -> None:
        self.join_twins()
        self.local.close()

    def join_twins(self, timeout_s: float = 120.0) -> None:
        with self._lock:
            threads, self._twin_threads = self._twin_threads, []
        for thread in threads:
            thread.join(timeout=timeout_s)
            assert not thread.is_alive(), f"{thread.name} still runs after {timeout_s} s"

    @contextlib.contextmanager
    def planned(self, plan: RequestPlan) -> Iterator[None]:
        """The next execution this thread starts gets plan (its payment id is minted inside the start)."""
        with self._lock:
            self._pending[threading.get_ident()] = plan
        try:
            yield
        finally:
            with self._lock:
                self._pending.pop(threading.get_ident(), None)

    def _plan(self, subject: int) -> RequestPlan:
        """The plan of the execution's subject (its payment, or its operation), set by the first execution of it."""
        with self._lock:
            pending = self._pending.pop(threading.get_ident(), None)
            if pending is not None and subject not in self._plans:
                self._plans[subject] = pending
                self._injector.set_plan(subject, pending.faults)
                return pending
            return RequestPlan()  # a replay or a resumed request: no whole-execution fault again

    def start_sync_execution(self, *, stateMachineArn: str, name: str, input: str) -> dict[str, Any]:
        payload = json.loads(input)
        payment_id = int(payload["payment_id"])
        plan = self._plan(subject_of(payload))
        if plan.holder_crash == "before":
            self.holder_crashes += 1
            raise HolderDiedError(f"start handler died before starting the saga of {payment_id}")
        if plan.double_start:
            response = self._twice(stateMachineArn, name, input, payment_id)
        else:
            response = self.local.start_sync_execution(stateMachineArn=stateMachineArn, name=name, input=input)
        if plan.holder_crash == "after":
            self.holder_crashes += 1
            raise HolderDiedError(f"start handler died after the saga of {payment_id} ran")
        return response

    def _twice(self, arn: str, name: str, payload: str, payment_id: int) -> dict[str, Any]:
        """The same payment started twice at once (a client retry racing the first): the twin goes through the
        lease like any start, so it waits for the first execution instead of running beside it."""
        self.double_starts += 1
        self._start_twin(Where.TWIN_START, "start", json.loads(payload))  # joined before the checks
        return self.local.start_sync_execution(stateMachineArn=arn, name=name, input=payload)

    # -- whole executions of a payment that is being run ---------------------------------------------------------

    def _twin_at_step(self, where: Where, step: str, event: dict[str, Any]) -> None:
        """Called by the injector as an execution reaches `step`, before the step runs."""
        payment_id = int(event["payment_id"])
        if where is Where.REPLAY_RUNNING:
            self._replay_running(step, payment_id)
        elif where is Where.TAKEOVER:
            self._backends.expire_lease(payment_id)
            self._start_twin(where, step, event).join(timeout=300)  # the twin runs while this one is paused
        else:
            self._start_twin(where, step, event)  # runs beside this one: it must wait for the lease

    def _replay_running(self, step: str, payment_id: int) -> None:
        with self._backends.engine.connect() as conn:
            arn = conn.execute(text("SELECT execution_arn FROM saga_executions WHERE payment_id = :id"
                                    " AND status = 'RUNNING' ORDER BY started_at DESC LIMIT 1"),
                               {"id": payment_id}).scalar()
        if arn is None:
            return
        try:
            replay(self.services, str(arn))
        except ReplayError as error:
            self._record(TwinRun(Where.REPLAY_RUNNING, step, payment_id, refused=True, detail=str(error)))
            return
        self._record(TwinRun(Where.REPLAY_RUNNING, step, payment_id, refused=False,
                             detail=f"the replay of running execution {arn} ran"))

    def _workflow(self, saga_input: ExecutionInput) -> Workflow:
        """The workflow an execution's input runs: the payment saga, or its operation's own."""
        if saga_input.operation_id is None:
            return Workflow.PAYMENT
        with self._backends.engine.connect() as conn:
            operation = get_operation(conn, operation_id=saga_input.operation_id)
        assert operation is not None, f"operation {saga_input.operation_id} is written before its executions"
        return Workflow(operation.kind)

    def _start_twin(self, where: Where, step: str, event: dict[str, Any]) -> threading.Thread:
        saga_input = ExecutionInput.parse(event, leased=False).with_lease_cleared()
        payment_id = saga_input.payment_id
        settings = self._backends.settings
        workflow = self._workflow(saga_input)

        def run() -> None:
            try:
                done = run_execution(self.services, name=f"twin-{payment_id}-{ULID()}", saga_input=saga_input,
                                     wait_ms=settings.lease_wait_ms, workflow=workflow)
            except PaymentBusyError as error:
                self._record(TwinRun(where, step, payment_id, refused=True, detail=str(error)))
                return
            ran = done.response is not None
            self._record(TwinRun(where, step, payment_id, refused=False, status=done.payment.status,
                                 detail=f"{'ran' if ran else 'answered from the record'}: {done.payment.status}"))

        thread = threading.Thread(target=run, name=f"sim-{where}-{payment_id}", daemon=True)
        with self._lock:
            self._twin_threads.append(thread)
        thread.start()
        return thread

    def _record(self, twin: TwinRun) -> None:
        with self._lock:
            self.twins.append(twin)

    def get_execution_history(self, **kwargs: Any) -> dict[str, Any]:
        return self.local.get_execution_history(**kwargs)


@dataclass(frozen=True)
class TwinRun:
    """A whole execution of a payment started while another ran it, and what it did."""

    where: Where
    step: str
    payment_id: int
    refused: bool  # it never ran: the lease was held (a start that waited in vain, a replay told to wait)
    status: str | None = None  # the payment's status it answered from, when it was not refused
    detail: str = ""


@dataclass
class Outcome:
    """What the driver saw for one request."""

    key: str
    merchant_id: str
    fingerprint: str
    payment_id: int | None = None
    http_status: int | None = None
    scenario: str = "plain"
    notes: list[str] = field(default_factory=list)


def drain_queue(sqs: Any, queue_name: str, max_batches: int = MAX_QUEUE_BATCHES) -> list[dict[str, Any]]:
    """Every message now in the queue, parsed (received, then deleted), at most max_batches of 10."""
    url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    bodies: list[dict[str, Any]] = []
    for _ in range(max_batches):
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not batch:
            break
        for message in batch:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies
