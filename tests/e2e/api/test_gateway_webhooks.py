"""POST /v1/webhooks/{stripe,adyen} on the local stack: verified with each SDK's helper, stored once by event id,
applied (disputes move money), and what each refused or repeated request leaves in the database."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from ulid import ULID

from local.adyen.notifications import notification_item, signed_notification
from local.gateway_tokens import TOKENS, Scenario
from local.stack.state import load
from local.stripe.signing import sign
from local.testing.live import LiveStack
from tests.e2e.saga_support import ledger_kinds, outbox, pay, payment_row

FIXTURES = (Path(__file__).parents[3] / ".." / "shared" / "oracles" / "stripe" / "fixtures3.json").resolve()


def _paid(live: LiveStack, gateway: str, amount_minor: int = 2500) -> dict[str, Any]:
    """A succeeded payment's row, with the merchant's API key under "api_key"."""
    _, api_key = live.new_merchant(gateway=gateway)
    response = pay(live, api_key, amount_minor=amount_minor, token=TOKENS[gateway][Scenario.APPROVE])
    assert response.status_code == 201, response.text
    return {**payment_row(live, response.json()["id"]), "api_key": api_key}


def _notices(live: LiveStack, gateway: str) -> list[dict[str, Any]]:
    with live.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM gateway_notices WHERE gateway = :g ORDER BY received_at"),
                            {"g": gateway}).mappings().all()
    return [dict(r) for r in rows]


def _settled_count(live: LiveStack, gateway: str, *, quiet_s: float = 2.0, timeout_s: float = 30.0) -> int:
    """How many notices are stored once the gateway's own webhooks (sent after the payment, asynchronously, later
    under load) have stopped arriving: the same count for `quiet_s`."""
    deadline = time.monotonic() + timeout_s
    count, since = len(_notices(live, gateway)), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = len(_notices(live, gateway))
        if now != count:
            count, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return count
    raise AssertionError(f"{gateway} webhooks still arriving after {timeout_s} s")


def _disputes(live: LiveStack, payment_id: int) -> list[dict[str, Any]]:
    with live.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM disputes WHERE payment_id = :p"), {"p": payment_id}).mappings().all()
    return [dict(r) for r in rows]


# -- Adyen -------------------------------------------------------------------------------------------------------

def _adyen_post(live: LiveStack, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{live.api_url}/v1/webhooks/adyen", json=body, timeout=30)


def _chargeback(live: LiveStack, payment: dict[str, Any], event_code: str = "CHARGEBACK", *,
                reference: str | None = None, merchant_reference: str | None = None,
                key: str | None = None) -> dict[str, Any]:
    secrets = load(live.root).secrets
    item = notification_item(
        event_code=event_code, psp_reference=reference or f"CB{ULID().hex[-14:].upper()}",
        merchant_reference=merchant_reference or str(payment["id"]),
        merchant_account=secrets["ADYEN_MERCHANT_ACCOUNT"], amount_minor=int(payment["captured_amount_minor"]),
        currency=payment["currency"], success=True, at_ms=int(time.time() * 1000),
        original_reference=payment["gateway_reference"], reason="Fraud")
    return signed_notification(item, key or secrets["ADYEN_HMAC_KEY"])


def test_the_adyen_server_s_own_webhooks_are_stored_and_linked_to_the_payment(live: LiveStack) -> None:
    payment = _paid(live, "adyen")
    mine = [n for n in _notices(live, "adyen") if n["payment_id"] == payment["id"]]
    kinds = {n["kind"] for n in mine}
    # The capture's outcome came by webhook (the saga read it before posting the ledger); the authorisation's too.
    assert {"authorised", "captured"} <= kinds, kinds
    assert all(n["applied_at"] is not None for n in mine)


def test_an_adyen_chargeback_moves_the_amount_to_disputes_once_and_tells_the_merchant(live: LiveStack) -> None:
    payment = _paid(live, "adyen")
    api_key = payment["api_key"]
    body = _chargeback(live, payment)
    response = _adyen_post(live, body)
    assert response.status_code == 200 and response.text == "[accepted]", response.text
    (dispute,) = _disputes(live, payment["id"])
    assert (dispute["status"], dispute["amount_minor"], dispute["reason"]) == ("open", 2500, "Fraud")
    assert ledger_kinds(live, str(payment["id"])) == ["reserve", "post", "dispute_opened"]
    assert "payment.disputed" in [e["event_type"] for e in outbox(live, str(payment["id"]))]
    shown = httpx.get(f"{live.api_url}/v1/payments/{payment['id']}", timeout=10,
                      headers={"Authorization": f"Bearer {api_key}"}).json()
    assert [(d["status"], d["amount_minor"]) for d in shown["disputes"]] == [("open", 2500)]

    stored = len(_notices(live, "adyen"))
    again = _adyen_post(live, body)  # Adyen redelivers until it reads [accepted]
    assert again.status_code == 200 and again.text == "[accepted]"
    assert len(_notices(live, "adyen")) == stored
    assert ledger_kinds(live, str(payment["id"])) == ["reserve", "post", "dispute_opened"]
    assert len(_disputes(live, payment["id"])) == 1


def test_a_forged_adyen_notification_is_refused_and_nothing_is_stored(live: LiveStack) -> None:
    payment = _paid(live, "adyen")
    stored = len(_notices(live, "adyen"))
    forged = _chargeback(live, payment, key="00" * 32)
    response = _adyen_post(live, forged)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "WebhookRejected"
    unsigned = copy.deepcopy(forged)
    del unsigned["notificationItems"][0]["NotificationRequestItem"]["additionalData"]["hmacSignature"]
    assert _adyen_post(live, unsigned).status_code == 400
    assert len(_notices(live, "adyen")) == stored
    assert _disputes(live, payment["id"]) == []


def test_a_chargeback_reversal_before_its_chargeback_waits_then_both_apply(live: LiveStack) -> None:
    payment = _paid(live, "adyen")
    reference = f"CB{ULID().hex[-14:].upper()}"
    reversed_first = _adyen_post(live, _chargeback(live, payment, "CHARGEBACK_REVERSED", reference=reference))
    assert reversed_first.status_code == 200  # kept, never a 5xx storm
    waiting = [n for n in _notices(live, "adyen") if n["operation_reference"] == reference]
    assert len(waiting) == 1 and waiting[0]["applied_at"] is None
    assert waiting[0]["last_error"] == "the dispute's opening has not arrived yet"

    assert _adyen_post(live, _chargeback(live, payment, reference=reference)).status_code == 200
    assert ledger_kinds(live, str(payment["id"])) == ["reserve", "post", "dispute_opened", "dispute_won"]
    (dispute,) = _disputes(live, payment["id"])
    assert dispute["status"] == "won"
    assert all(n["applied_at"] is not None for n in _notices(live, "adyen") if n["operation_reference"] == reference)


def test_a_notification_for_an_unknown_payment_is_kept_unapplied(live: LiveStack) -> None:
    payment = _paid(live, "adyen")
    ghost = {**payment, "gateway_reference": f"UNKNOWN{ULID().hex[-9:].upper()}"}
    response = _adyen_post(live, _chargeback(live, ghost, merchant_reference="8999999999999999999"))
    assert response.status_code == 200
    (kept,) = [n for n in _notices(live, "adyen") if n["gateway_reference"] == ghost["gateway_reference"]]
    assert kept["payment_id"] is None and kept["applied_at"] is None and kept["apply_attempts"] == 1


# -- Stripe ------------------------------------------------------------------------------------------------------

def _dispute_event(payment: dict[str, Any]) -> bytes:
    fixtures = json.loads(FIXTURES.read_text())["resources"]
    event = copy.deepcopy(fixtures["event"])
    dispute = copy.deepcopy(fixtures["dispute"])
    dispute.update(id=f"dp_{ULID()}", payment_intent=payment["gateway_reference"],
                   amount=int(payment["captured_amount_minor"]), currency=payment["currency"].lower(),
                   reason="fraudulent", status="needs_response")
    event.update(id=f"evt_{ULID()}", type="charge.dispute.created", created=int(time.time()),
                 data={"object": dispute})
    return json.dumps(event).encode()


def _stripe_post(live: LiveStack, payload: bytes, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return httpx.post(f"{live.api_url}/v1/webhooks/stripe", content=payload, headers=headers, timeout=30)


def test_a_stripe_dispute_is_verified_stored_once_and_applied(live: LiveStack) -> None:
    payment = _paid(live, "stripe")
    payload = _dispute_event(payment)
    secret = load(live.root).secrets["STRIPE_WEBHOOK_SECRET"]
    response = _stripe_post(live, payload, sign(payload, secret, int(time.time())))
    assert response.status_code == 200, response.text
    assert response.json() == {"received": True, "stored": 1, "duplicates": 0}
    (dispute,) = _disputes(live, payment["id"])
    assert (dispute["status"], dispute["amount_minor"], dispute["reason"]) == ("open", 2500, "fraudulent")
    assert ledger_kinds(live, str(payment["id"])) == ["reserve", "post", "dispute_opened"]

    redelivered = _stripe_post(live, payload, sign(payload, secret, int(time.time())))
    assert redelivered.json() == {"received": True, "stored": 0, "duplicates": 1}
    assert ledger_kinds(live, str(payment["id"])) == ["reserve", "post", "dispute_opened"]


def test_a_stale_forged_or_missing_stripe_signature_is_refused_and_nothing_is_stored(live: LiveStack) -> None:
    payment = _paid(live, "stripe")
    payload = _dispute_event(payment)
    secret = load(live.root).secrets["STRIPE_WEBHOOK_SECRET"]
    stored = _settled_count(live, "stripe")
    for signature in (sign(payload, secret, int(time.time()) - 301),  # older than the 300 s tolerance
                      sign(payload, "whsec_not_ours", int(time.time())),
                      None):
        response = _stripe_post(live, payload, signature)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["type"] == "WebhookRejected"
    tampered = payload.replace(b'"fraudulent"', b'"duplicate"')
    assert _stripe_post(live, tampered, sign(payload, secret, int(time.time()))).status_code == 400
    assert len(_notices(live, "stripe")) == stored
    assert _disputes(live, payment["id"]) == []


def test_no_webhooks_are_taken_for_the_sandbox_or_an_unknown_gateway(live: LiveStack) -> None:
    for gateway in ("sandbox", "paypal"):
        response = httpx.post(f"{live.api_url}/v1/webhooks/{gateway}", json={}, timeout=30)
        assert response.status_code == 404, response.text
