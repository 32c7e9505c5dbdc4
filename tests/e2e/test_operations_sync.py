"""The payment-status sync and the operations after checkout (saga.sync): an operation left pending (its capture
acknowledged, never confirmed) is finished once the gateway knows its outcome; a manual-capture authorization left
open until shortly before it would lapse is captured or cancelled as its merchant's policy says; one waiting for its
merchant is left alone.

The operations run in this process on the local runtime with a manual clock (CapturePending's retries back off in
virtual time), against the live stack's backends."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from ulid import ULID

from core import limits
from local.http.apigateway import new_context, to_event
from local.testing.live import LiveStack
from saga.bootstrap import Services
from saga.handler import make_handler
from saga.sync import sync
from tests.e2e.saga_support import ledger_kinds, outbox, payment_row


def _call(services: Services, api_key: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    event = to_event(method="POST", path=path, query=[], body=json.dumps(body).encode(),
                     headers=[("Authorization", f"Bearer {api_key}"), ("Idempotency-Key", str(ULID())),
                              ("Content-Type", "application/json")], source_ip="127.0.0.1")
    result = make_handler(services)(event, new_context("paysaga-start"))
    return int(result["statusCode"]), json.loads(result["body"])


def _authorized(services: Services, api_key: str, *, token: str = "tok_approve", amount_minor: int = 4200) -> str:
    status, answer = _call(services, api_key, "/v1/payments", {
        "amount_minor": amount_minor, "currency": "EUR", "payment_method_token": token, "capture_mode": "manual",
        "customer_reference": f"cus_{ULID()}", "order_reference": f"ord_{ULID()}"})
    assert status == 201 and answer["status"] == "authorized", answer
    return str(answer["id"])


def _operation_statuses(live: LiveStack, payment_id: str) -> list[tuple[str, str, str]]:
    with live.engine.connect() as conn:
        rows = conn.execute(text("SELECT kind, status, initiator FROM payment_operations WHERE payment_id = :id"
                                 " ORDER BY created_at"), {"id": int(payment_id)}).all()
    return [(str(r.kind), str(r.status), str(r.initiator)) for r in rows]


def test_a_capture_left_pending_is_finished_by_the_sync_once_the_gateway_confirms_it(
        live: LiveStack, services: Services, captures_never_settle: None) -> None:
    _, api_key = live.new_merchant()
    payment_id = _authorized(services, api_key, token="tok_async_capture")
    assert ledger_kinds(live, payment_id) == ["reserve"]
    status, answer = _call(services, api_key, f"/v1/payments/{payment_id}/capture", {"amount_minor": 3000})
    assert status == 202 and answer["operation"]["status"] == "pending", answer
    assert payment_row(live, payment_id)["status"] == "capture_submitted"

    sync(services, grace_ms=0, only=[int(payment_id)])  # still unknown at the gateway: left pending
    assert _operation_statuses(live, payment_id) == [("capture", "pending", "merchant")]

    httpx.post(f"{live.gateway_url}/_sandbox/settle", params={"payment_id": payment_id, "outcome": "captured"},
               timeout=10).raise_for_status()
    sync(services, grace_ms=0, only=[int(payment_id)])
    assert _operation_statuses(live, payment_id) == [("capture", "succeeded", "merchant")]
    row = payment_row(live, payment_id)
    assert row["status"] == "succeeded" and row["captured_amount_minor"] == 3000
    assert ledger_kinds(live, payment_id) == ["reserve", "post"]
    assert [e["event_type"] for e in outbox(live, payment_id)] == ["payment.captured"]


@pytest.mark.parametrize(("policy", "ends"), [("capture", "succeeded"), ("cancel", "canceled")])
def test_an_authorization_nearing_expiry_is_settled_by_the_merchant_s_policy(
        live: LiveStack, services: Services, policy: str, ends: str) -> None:
    merchant_id, api_key = live.new_merchant()
    with live.engine.begin() as conn:
        conn.execute(text("UPDATE merchants SET expiring_authorization_action = :a WHERE id = :m"),
                     {"a": policy, "m": merchant_id})
    old, fresh = _authorized(services, api_key), _authorized(services, api_key)
    age_s = (limits.AUTHORIZATION_LIFETIME_MS - limits.AUTHORIZATION_SAFETY_MS) // 1000 + 60
    with live.engine.begin() as conn:  # authorized long ago: the card scheme would let it lapse within a day
        conn.execute(text("UPDATE payments SET created_at = now() - make_interval(secs => :s) WHERE id = :id"),
                     {"s": age_s, "id": int(old)})

    report = sync(services, grace_ms=0, only=[int(old), int(fresh)])
    assert report.expiring == {int(old): policy}
    assert report.replayed == {}, "a manual-capture payment waiting for its merchant is not stuck"
    assert payment_row(live, old)["status"] == ends
    assert _operation_statuses(live, old) == [(policy, "succeeded", "expiry_policy")]
    assert ledger_kinds(live, old) == ["reserve", "post" if policy == "capture" else "void"]
    assert payment_row(live, fresh)["status"] == "authorized" and _operation_statuses(live, fresh) == []

    again = sync(services, grace_ms=0, only=[int(old), int(fresh)])  # settled once: nothing more to do
    assert again.expiring == {} and again.operations == {}
