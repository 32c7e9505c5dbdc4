"""The sandbox keeps its state in SQLite: a crashed and restarted server still knows every payment, replays every
stored answer and keeps its call log."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from steps.gateway import GatewayOutcomeUnknown, GatewayStatus, Operation, SandboxGateway
from tests.integration.steps.gateway.conftest import ref, running_sandbox


def test_state_survives_a_crash_and_restart(tmp_path: Path) -> None:
    with running_sandbox(tmp_path) as server:
        with SandboxGateway(base_url=server.url) as gateway:
            auth = gateway.authorize(payment_id="pay_1", amount_minor=900, currency="GBP", card_token="tok_approve")
            capture = gateway.capture(
                payment_id="pay_1", gateway_reference=ref(gateway, "pay_1"), amount_minor=900, currency="GBP"
            )
            gateway.authorize(payment_id="pay_2", amount_minor=50, currency="GBP", card_token="tok_async_capture")
            gateway.capture(
                payment_id="pay_2", gateway_reference=ref(gateway, "pay_2"), amount_minor=50, currency="GBP"
            )
        server.crash()
        server.start()
        with SandboxGateway(base_url=server.url) as gateway:
            found = gateway.lookup(payment_id="pay_1")
            assert found is not None
            assert (found.status, found.captured_minor, found.gateway_reference) == (
                GatewayStatus.CAPTURED,
                900,
                auth.gateway_reference,
            )
            replayed = gateway.capture(
                payment_id="pay_1", gateway_reference=ref(gateway, "pay_1"), amount_minor=900, currency="GBP"
            )
            assert replayed.replayed is True
            assert replayed.operation_reference == capture.operation_reference
            pending = gateway.lookup(payment_id="pay_2")
            assert pending is not None and pending.status is GatewayStatus.CAPTURE_SUBMITTED
        with httpx.Client(base_url=server.url) as admin:
            assert admin.post("/_sandbox/settle", params={"payment_id": "pay_2"}).json()["status"] == "captured"
            log = admin.get("/_sandbox/calls", params={"payment_id": "pay_1"}).json()["calls"]
        assert [(c["operation"], c["committed"]) for c in log] == [
            (Operation.AUTHORIZE.value, True),
            (Operation.CAPTURE.value, True),
            (Operation.CAPTURE.value, False),
        ]


def test_a_restart_does_not_rearm_a_first_attempt_fault(tmp_path: Path) -> None:
    with running_sandbox(tmp_path) as server:
        body = {"payment_id": "pay_f", "amount_minor": 10, "currency": "EUR", "card_token": "tok_5xx_then_success"}
        headers = {"Idempotency-Key": "pay_f"}
        with httpx.Client(base_url=server.url) as client:
            assert client.post("/v1/payments", json=body, headers=headers).status_code == 503
        server.stop()
        server.start()
        with httpx.Client(base_url=server.url) as client:
            response = client.post("/v1/payments", json=body, headers=headers)
        assert response.status_code == 200
        assert response.json()["status"] == "authorized"


def test_startup_latency_flag_is_applied(tmp_path: Path) -> None:
    with (
        running_sandbox(tmp_path, "--latency-ms", "300") as server,
        SandboxGateway(base_url=server.url, timeout_ms=100) as impatient,
        pytest.raises(GatewayOutcomeUnknown),
    ):
        impatient.lookup(payment_id="p")
