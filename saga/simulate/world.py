"""The simulation's view of one running local stack: its settings, the pids it may freeze, the clients that read
the truth (database, gateway call log, queue, idempotency table), and the saga wired to the fault injector."""

from __future__ import annotations

import contextlib
import functools
import json
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

import saga.replay
import saga.start
from core.aws import client
from core.db import engine_for
from core.settings import Settings
from ledger.executions import insert_execution
from saga.asl import LocalStepFunctions, ManualClock
from saga.sfn import (
    LOCAL_ACCOUNT,
    LOCAL_REGION,
    LOCAL_STATE_MACHINE_NAME,
    STATE_MACHINE_FILE,
    local_substitutions,
    record_outcome,
    recorded_execution_arn,
)
from saga.simulate.faults import Injector, Plan

HTTP_TIMEOUT_S = 10.0
MAX_QUEUE_BATCHES = 500  # 10 messages each: bounds one drain of the notifications queue


class HolderDiedError(BaseException):
    """The start handler's process died (BaseException: nothing in the handler may catch it)."""


@dataclass
class Backends:
    settings: Settings
    redis_pid: int | None
    aws_pid: int | None

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

    @property
    def gateway_url(self) -> str:
        assert self.settings.sandbox_gateway_url, "the simulation runs against the sandbox gateway"
        return self.settings.sandbox_gateway_url.rstrip("/")

    def gateway_calls(self, payment_id: str | None = None) -> list[dict[str, Any]]:
        params = {"payment_id": payment_id} if payment_id is not None else {}
        response = self.http.get(f"{self.gateway_url}/_sandbox/calls", params=params)
        response.raise_for_status()
        calls: list[dict[str, Any]] = response.json()["calls"]
        return calls

    def gateway_snapshot(self, payment_id: str) -> dict[str, Any] | None:
        response = self.http.get(f"{self.gateway_url}/v1/payments/{payment_id}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def drain_queue(self) -> list[dict[str, Any]]:
        """Every message now in the notifications queue (received, then deleted)."""
        return drain_queue(self.sqs, self.settings.notifications_queue)

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
        self.arn = self.local.create_state_machine(
            name=LOCAL_STATE_MACHINE_NAME, definition=STATE_MACHINE_FILE.read_text(),
            roleArn=f"arn:aws:iam::{LOCAL_ACCOUNT}:role/paysaga-sim", type="EXPRESS",
            definitionSubstitutions=local_substitutions())["stateMachineArn"]
        self._lock = threading.Lock()
        self._plans: dict[int, RequestPlan] = {}
        self._pending: dict[int, RequestPlan] = {}  # thread id -> plan of the request that thread is running
        self.double_starts = 0
        self.holder_crashes = 0

    def close(self) -> None:
        self.local.close()

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

    def _plan(self, payment_id: int) -> RequestPlan:
        with self._lock:
            pending = self._pending.pop(threading.get_ident(), None)
            if pending is not None and payment_id not in self._plans:
                self._plans[payment_id] = pending
                self._injector.set_plan(payment_id, pending.faults)
                return pending
            return RequestPlan()  # a replay or a resumed request: no whole-execution fault again

    def start_sync_execution(self, *, stateMachineArn: str, name: str, input: str) -> dict[str, Any]:
        payment_id = int(json.loads(input)["payment_id"])
        plan = self._plan(payment_id)
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
        self.double_starts += 1
        twin_name = f"{name[:70]}-twin"
        twin_arn = recorded_execution_arn(arn, twin_name)
        with self._backends.engine.begin() as conn:  # recorded, as an engineer would need to see it
            insert_execution(conn, execution_arn=twin_arn, payment_id=payment_id, name=twin_name,
                             input=json.loads(payload))
        answers: dict[str, dict[str, Any]] = {}

        def run(key: str, execution_name: str) -> None:
            answers[key] = self.local.start_sync_execution(stateMachineArn=arn, name=execution_name, input=payload)

        twin = threading.Thread(target=run, args=("twin", twin_name), name=f"sim-twin-{payment_id}")
        twin.start()
        run("first", name)
        twin.join(timeout=300)
        if "twin" in answers:
            with self._backends.engine.begin() as conn:
                record_outcome(conn, settings=self._backends.settings, sfn=self.local, execution_arn=twin_arn,
                               response=answers["twin"])
        return answers["first"]

    def get_execution_history(self, **kwargs: Any) -> dict[str, Any]:
        return self.local.get_execution_history(**kwargs)


@contextlib.contextmanager
def saga_wired_to(sfn: SimStepFunctions) -> Iterator[None]:
    """The start handler and replay reach Step Functions through `step_functions(settings)`: point both at sfn."""
    fake: Callable[[Settings], tuple[SimStepFunctions, str]] = lambda _settings: (sfn, sfn.arn)  # noqa: E731
    modules = (saga.start, saga.replay)
    originals = [getattr(module, "step_functions") for module in modules]  # noqa: B009  # not re-exported
    for module in modules:
        setattr(module, "step_functions", fake)  # noqa: B010
    try:
        yield
    finally:
        for module, original in zip(modules, originals, strict=True):
            setattr(module, "step_functions", original)  # noqa: B010


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
