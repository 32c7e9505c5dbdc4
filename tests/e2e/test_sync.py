"""The payment-status sync (saga.sync): a payment parked while its capture's outcome was still unknown is resolved
once the gateway knows it, and one that already ran its last execution is left parked for an engineer.

The saga runs in this process on the local runtime with a manual clock (CaptureOrVoid's CapturePending retries back
off in virtual time), against the live stack's backends."""

from __future__ import annotations

import json

import httpx
from ulid import ULID

from local.http.apigateway import new_context, to_event
from local.testing.live import LiveStack
from saga.bootstrap import Services
from saga.handler import make_handler
from saga.sync import sync
from tests.e2e.saga_support import ledger_kinds, payment_row


def _parked_payment(live: LiveStack, services: Services) -> str:
    """A payment whose capture the gateway acknowledged and never confirmed: the saga parks it (202)."""
    _, api_key = live.new_merchant()
    body = {"amount_minor": 4200, "currency": "EUR", "payment_method_token": "tok_async_capture",
            "customer_reference": f"cus_{ULID()}", "order_reference": f"ord_{ULID()}"}
    event = to_event(method="POST", path="/v1/payments", query=[], body=json.dumps(body).encode(),
                     headers=[("Authorization", f"Bearer {api_key}"), ("Idempotency-Key", str(ULID())),
                              ("Content-Type", "application/json")], source_ip="127.0.0.1")
    result = make_handler(services)(event, new_context("paysaga-start"))
    answer = json.loads(result["body"])
    assert result["statusCode"] == 202 and answer["status"] == "needs_attention", answer
    payment_id = str(answer["id"])
    assert ledger_kinds(live, payment_id) == ["reserve"]
    return payment_id


def test_a_parked_capture_is_resolved_by_the_sync_once_the_gateway_confirms_it(
        live: LiveStack, services: Services, captures_never_settle: None) -> None:
    payment_id = _parked_payment(live, services)
    waiting = sync(services, grace_ms=0, only=[int(payment_id)])  # still unknown at the gateway: parked again
    assert waiting.replayed == {int(payment_id): "needs_attention"}

    settled = httpx.post(f"{live.gateway_url}/_sandbox/settle", params={"payment_id": payment_id,
                                                                       "outcome": "captured"}, timeout=10)
    settled.raise_for_status()
    report = sync(services, grace_ms=0, only=[int(payment_id)])
    assert report.replayed == {int(payment_id): "succeeded"}
    row = payment_row(live, payment_id)
    assert row["status"] == "succeeded" and row["captured_amount_minor"] == 4200
    assert ledger_kinds(live, payment_id) == ["reserve", "post"]

    again = sync(services, grace_ms=0, only=[int(payment_id)])  # a final payment is not looked at again
    assert again.replayed == {} and again.given_up == []


def test_the_sync_waits_out_its_grace_and_gives_up_after_the_last_attempt(
        live: LiveStack, services: Services, captures_never_settle: None) -> None:
    payment_id = _parked_payment(live, services)
    assert sync(services, grace_ms=3_600_000, only=[int(payment_id)]).replayed == {}, "touched just now"
    report = sync(services, grace_ms=0, max_executions=1, only=[int(payment_id)])
    assert report.given_up == [int(payment_id)] and report.replayed == {}
    assert payment_row(live, payment_id)["status"] == "needs_attention"
