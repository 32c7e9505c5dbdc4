"""A whole local stack (`paysaga stack up` in a throwaway folder) for end-to-end tests and benchmarks through real
HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
from sqlalchemy import Engine, create_engine

from local.gateway_views import GatewayViews
from local.stack import local
from local.stack.state import load
from saga.merchant_keys import create_merchant

BACKEND_VARS = ("DATABASE_URL", "REDIS_URL", "AWS_ENDPOINT_URL", "PAYSAGA_API_PORT", "SANDBOX_GATEWAY_URL",
                "STRIPE_API_BASE", "STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET", "ADYEN_CHECKOUT_URL", "ADYEN_API_KEY",
                "ADYEN_MERCHANT_ACCOUNT", "ADYEN_HMAC_KEY")
# A queue of the tests' own, subscribed to the notifications topic: what the stack announced (LiveStack.notifications).
TAP_QUEUE = "paysaga-test-tap"
# Short enough for tests to watch a crashed holder's key expire; long enough for any saga at zero latency, and for a
# test to restart the API server within it on a loaded machine (make test runs three sessions on two cores).
TEST_ENV = {"IDEMPOTENCY_IN_PROGRESS_TTL_MS": "15000", "EXECUTION_LEASE_MS": "6000", "LEASE_WAIT_MS": "3000",
            "GATEWAY_TIMEOUT_MS": "1000", "LOG_LEVEL": "WARNING"}


@dataclass
class LiveStack:
    root: Path
    env: dict[str, str]
    _engine: Engine | None = field(default=None, repr=False)
    _http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=10), repr=False)
    _announced: dict[str, list[dict[str, Any]]] = field(default_factory=dict, repr=False)  # payment id -> events

    @property
    def urls(self) -> dict[str, str]:
        return {name: part.url for name, part in load(self.root).parts.items()}

    @property
    def api_url(self) -> str:
        return self.urls["api"]

    @property
    def gateway_url(self) -> str:
        return self.urls["gateway"]

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_engine(self.urls["postgres"], pool_size=5)
        return self._engine

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "local.cli", *args], env=self.env, capture_output=True,
                              text=True, timeout=300, check=False)

    def restart_api(self) -> None:
        result = self.cli("stack", "restart", "api")
        assert result.returncode == 0, result.stderr

    def api_pid(self) -> int:
        pid = load(self.root).parts["api"].pid
        assert pid is not None
        return pid

    def new_merchant(self, *, currencies: tuple[str, ...] = ("EUR", "USD"), max_amount_minor: int = 1_000_000,
                     gateway: str = "sandbox") -> tuple[str, str]:
        with self.engine.begin() as conn:
            return create_merchant(conn, name="Test Shop", currencies=list(currencies), gateway=gateway,
                                   max_amount_minor=max_amount_minor)

    @property
    def gateways(self) -> GatewayViews:
        """Each local gateway's own record (call log, view of a payment)."""
        state = load(self.root)
        urls = {name: state.parts[part].url for name, part in (("sandbox", "gateway"), ("stripe", "stripe"),
                                                               ("adyen", "adyen")) if part in state.parts}
        return GatewayViews(urls=urls, stripe_api_key=state.secrets["STRIPE_API_KEY"], http=self._http)

    def gateway_calls(self, payment_id: str, gateway: str = "sandbox") -> list[dict[str, Any]]:
        return self.gateways.calls(gateway, payment_id)

    def gateway_snapshot(self, payment_id: str, gateway: str = "sandbox") -> dict[str, Any] | None:
        return self.gateways.snapshot(gateway, payment_id)

    def configure_gateway(self, **config: Any) -> None:
        httpx.post(f"{self.gateway_url}/_sandbox/config", json=config, timeout=10).raise_for_status()

    def sqs(self) -> Any:
        return boto3.client("sqs", endpoint_url=self.urls["aws"], region_name="eu-west-1",
                            aws_access_key_id="local", aws_secret_access_key="local")  # noqa: S106  # emulator only

    def _aws(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.urls["aws"], region_name="eu-west-1",  # type: ignore[call-overload]
                            aws_access_key_id="local", aws_secret_access_key="local")  # noqa: S106  # emulator only

    def tap_notifications(self) -> None:
        """Subscribe a queue of our own to the notifications topic (raw delivery): what the stack's notification
        worker announces, the tests read there. Called once, before any payment."""
        sqs = self._aws("sqs")
        url = sqs.create_queue(QueueName=TAP_QUEUE)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns = self._aws("sns")
        topic = sns.create_topic(Name="paysaga-payment-events")["TopicArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={"RawMessageDelivery": "true"})

    def notifications(self, payment_id: str, *, count: int = 1, timeout_s: float = 20.0,
                      settle_s: float = 1.0) -> list[dict[str, Any]]:
        """The events announced about `payment_id` (read from the tap on the SNS topic): waits until `count` have
        arrived, then `settle_s` more, so a duplicate would show."""
        sqs = self._aws("sqs")
        url = sqs.get_queue_url(QueueName=TAP_QUEUE)["QueueUrl"]
        deadline = time.monotonic() + timeout_s
        settled_at: float | None = None
        while True:
            for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                               WaitTimeSeconds=0).get("Messages", []):
                event = json.loads(message["Body"])
                self._announced.setdefault(str(event["data"].get("payment_id")), []).append(event)
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            now = time.monotonic()
            if settled_at is None and len(self._announced.get(payment_id, [])) >= count:
                settled_at = now + settle_s
            if (settled_at is not None and now >= settled_at) or now >= deadline:
                return list(self._announced.get(payment_id, []))
            time.sleep(0.1)


@contextlib.contextmanager
def live_stack() -> Iterator[LiveStack]:
    root = Path(tempfile.mkdtemp(prefix="paysaga-live-"))
    root.chmod(0o755)  # PostgreSQL runs as 'postgres' when we are root and must reach the folder
    env = {k: v for k, v in os.environ.items() if k not in BACKEND_VARS}
    env.update(TEST_ENV)
    env["PAYSAGA_STACK_DIR"] = str(root)
    env["COLUMNS"] = "250"  # Rich tables must not fold ids in what the tests read
    stack = LiveStack(root=root, env=env)
    try:
        result = stack.cli("stack", "up")
        if result.returncode != 0:
            raise RuntimeError(f"paysaga stack up failed: {result.stderr or result.stdout}")
        stack.tap_notifications()
        yield stack
    finally:
        if stack._engine is not None:
            stack._engine.dispose()
        local.down(root)
        shutil.rmtree(root, ignore_errors=True)
