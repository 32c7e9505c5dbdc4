"""StripeGateway.read_webhook with events built from Stripe's own fixture objects (fixtures3.json, stripe-mock's):
the signature check (valid, forged, tampered, stale, missing, no secret) and the mapping of each event to a notice."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import stripe

from local.stripe.signing import sign
from steps.gateway.notices import GatewayNotice, NoticeKind, WebhookRejected
from steps.gateway.stripe import WEBHOOK_TOLERANCE_S, StripeGateway

FIXTURES = (Path(__file__).parents[3] / ".." / "shared" / "oracles" / "stripe" / "fixtures3.json").resolve()
SECRET = "whsec_unit_test_secret"


@cache
def _resources() -> dict[str, Any]:
    resources: dict[str, Any] = json.loads(FIXTURES.read_text())["resources"]
    return resources


def fixture(name: str, **changes: Any) -> dict[str, Any]:
    """A fresh copy of Stripe's fixture object ``name`` with ``changes`` applied."""
    obj: dict[str, Any] = copy.deepcopy(_resources()[name])
    obj.update(changes)
    return obj


def event(event_type: str, obj: dict[str, Any], event_id: str = "evt_test_1") -> dict[str, Any]:
    return fixture("event", id=event_id, type=event_type, created=1_700_000_000, data={"object": obj})


def payment_intent(**changes: Any) -> dict[str, Any]:
    return fixture("payment_intent", id="pi_test_1", metadata={"payment_id": "pay_1"}, currency="eur", **changes)


@pytest.fixture
def gateway() -> Iterator[StripeGateway]:
    # No request is sent: read_webhook works on the body alone.
    with StripeGateway(api_key="sk_test_unit", timeout_ms=1_000, webhook_secret=SECRET) as adapter:
        yield adapter


def body_of(evt: dict[str, Any]) -> bytes:
    return json.dumps(evt, indent=2).encode()


def read(gateway: StripeGateway, evt: dict[str, Any]) -> GatewayNotice:
    body = body_of(evt)
    notices = gateway.read_webhook(body, {"stripe-signature": sign(body, SECRET, int(time.time()))})
    assert len(notices) == 1
    return notices[0]


def test_the_fixture_file_is_stripes() -> None:
    assert FIXTURES.is_file(), FIXTURES
    for name in ("event", "payment_intent", "charge", "dispute", "refund"):
        assert _resources()[name]["object"] == name


def test_sign_matches_the_sdk() -> None:
    body = body_of(event("payment_intent.succeeded", payment_intent()))
    expected = stripe.WebhookSignature.generate_signature_header(body.decode(), SECRET, 1_700_000_123)
    assert sign(body, SECRET, 1_700_000_123) == expected


def test_a_valid_event_becomes_one_notice_with_the_raw_event(gateway: StripeGateway) -> None:
    evt = event("payment_intent.amount_capturable_updated", payment_intent(amount=1099, amount_capturable=1099))
    notice = read(gateway, evt)
    assert notice == GatewayNotice(
        gateway="stripe",
        event_id="evt_test_1",
        kind=NoticeKind.AUTHORISED,
        occurred_at_ms=1_700_000_000_000,
        payment_id="pay_1",
        gateway_reference="pi_test_1",
        operation_reference="pi_test_1",
        amount_minor=1099,
        currency="EUR",
        reason=None,
        payload=evt,
    )


def test_a_forged_signature_is_rejected(gateway: StripeGateway) -> None:
    body = body_of(event("payment_intent.succeeded", payment_intent()))
    with pytest.raises(WebhookRejected, match="No signatures found matching"):
        gateway.read_webhook(body, {"stripe-signature": sign(body, "whsec_someone_else", int(time.time()))})


def test_a_tampered_body_is_rejected(gateway: StripeGateway) -> None:
    body = body_of(event("payment_intent.succeeded", payment_intent(amount_received=100)))
    signature = sign(body, SECRET, int(time.time()))
    tampered = body.replace(b'"amount_received": 100', b'"amount_received": 999')
    assert tampered != body
    with pytest.raises(WebhookRejected, match="signature"):
        gateway.read_webhook(tampered, {"stripe-signature": signature})


def test_a_stale_signature_is_rejected_a_fresh_one_is_not(gateway: StripeGateway) -> None:
    body = body_of(event("payment_intent.succeeded", payment_intent()))
    now = int(time.time())
    with pytest.raises(WebhookRejected, match="tolerance"):
        gateway.read_webhook(body, {"stripe-signature": sign(body, SECRET, now - WEBHOOK_TOLERANCE_S - 1)})
    assert gateway.read_webhook(body, {"stripe-signature": sign(body, SECRET, now - WEBHOOK_TOLERANCE_S + 5)})


def test_a_missing_or_malformed_header_is_rejected(gateway: StripeGateway) -> None:
    body = body_of(event("payment_intent.succeeded", payment_intent()))
    with pytest.raises(WebhookRejected, match="missing Stripe-Signature"):
        gateway.read_webhook(body, {})
    with pytest.raises(WebhookRejected, match="missing Stripe-Signature"):
        gateway.read_webhook(body, {"stripe-signature": ""})
    with pytest.raises(WebhookRejected, match="timestamp"):
        gateway.read_webhook(body, {"stripe-signature": "v1=abc"})


def test_without_a_secret_every_event_is_rejected() -> None:
    body = body_of(event("payment_intent.succeeded", payment_intent()))
    with (
        StripeGateway(api_key="sk_test_unit", timeout_ms=1_000) as unconfigured,
        pytest.raises(WebhookRejected, match="no Stripe webhook secret"),
    ):
        unconfigured.read_webhook(body, {"stripe-signature": sign(body, SECRET, int(time.time()))})


def test_a_signed_body_that_is_not_an_event_is_rejected(gateway: StripeGateway) -> None:
    for body in (
        b"not json",
        b"[1, 2]",
        json.dumps(fixture("payment_intent")).encode(),
        json.dumps({"object": "event", "id": "evt_1", "type": "x", "created": 1, "data": {}}).encode(),
    ):
        with pytest.raises(WebhookRejected):
            gateway.read_webhook(body, {"stripe-signature": sign(body, SECRET, int(time.time()))})


def test_authorisation_failed_carries_the_decline_code(gateway: StripeGateway) -> None:
    lpe = {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds"}
    notice = read(gateway, event("payment_intent.payment_failed", payment_intent(amount=2000, last_payment_error=lpe)))
    assert (notice.kind, notice.amount_minor, notice.reason) == (
        NoticeKind.AUTHORISATION_FAILED,
        2000,
        "insufficient_funds",
    )
    assert (notice.payment_id, notice.gateway_reference) == ("pay_1", "pi_test_1")
    without = read(
        gateway, event("payment_intent.payment_failed", payment_intent(last_payment_error={"code": "expired_card"}))
    )
    assert without.reason == "expired_card"


def test_succeeded_is_a_capture_of_the_amount_received(gateway: StripeGateway) -> None:
    notice = read(gateway, event("payment_intent.succeeded", payment_intent(amount=2000, amount_received=1500)))
    assert (notice.kind, notice.amount_minor, notice.currency) == (NoticeKind.CAPTURED, 1500, "EUR")


def test_canceled_is_a_cancellation_with_its_reason(gateway: StripeGateway) -> None:
    intent = payment_intent(amount=2000, status="canceled", cancellation_reason="requested_by_customer")
    notice = read(gateway, event("payment_intent.canceled", intent))
    assert (notice.kind, notice.amount_minor, notice.reason) == (NoticeKind.CANCELLED, 2000, "requested_by_customer")


def test_charge_refunded_carries_the_total_refunded_and_the_latest_refund(gateway: StripeGateway) -> None:
    older = fixture("refund", id="re_old", created=1_700_000_000, amount=300)
    newer = fixture("refund", id="re_new", created=1_700_000_500, amount=200)
    charge = fixture(
        "charge",
        payment_intent="pi_test_1",
        amount=1000,
        amount_refunded=500,
        currency="eur",
        refunds={"object": "list", "data": [older, newer], "has_more": False, "url": "/v1/charges/x/refunds"},
    )
    notice = read(gateway, event("charge.refunded", charge))
    assert (notice.kind, notice.amount_minor, notice.operation_reference) == (NoticeKind.REFUNDED, 500, "re_new")
    assert (notice.gateway_reference, notice.payment_id) == ("pi_test_1", None)  # a charge carries no payment_id


def test_charge_refunded_without_its_refunds_names_the_charge(gateway: StripeGateway) -> None:
    charge = fixture("charge", payment_intent={"id": "pi_test_1", "object": "payment_intent"}, amount_refunded=100)
    del charge["refunds"]  # API versions since 2022-11-15 leave them out
    notice = read(gateway, event("charge.refunded", charge))
    assert (notice.operation_reference, notice.gateway_reference) == (charge["id"], "pi_test_1")


def test_refund_failures(gateway: StripeGateway) -> None:
    refund = fixture(
        "refund",
        id="re_1",
        payment_intent="pi_test_1",
        amount=700,
        status="failed",
        failure_reason="expired_or_canceled_card",
        metadata={"payment_id": "pay_1"},
    )
    for event_type in ("refund.failed", "charge.refund.updated", "refund.updated"):
        notice = read(gateway, event(event_type, refund))
        assert (notice.kind, notice.amount_minor, notice.operation_reference, notice.reason) == (
            NoticeKind.REFUND_FAILED,
            700,
            "re_1",
            "expired_or_canceled_card",
        )
        assert (notice.payment_id, notice.gateway_reference) == ("pay_1", "pi_test_1")
    succeeded = fixture("refund", status="succeeded")
    assert read(gateway, event("charge.refund.updated", succeeded)).kind is NoticeKind.OTHER


def test_dispute_opened(gateway: StripeGateway) -> None:
    dispute = fixture("dispute", payment_intent="pi_test_1")
    notice = read(gateway, event("charge.dispute.created", dispute))
    assert (notice.kind, notice.amount_minor, notice.operation_reference, notice.reason) == (
        NoticeKind.DISPUTE_OPENED,
        dispute["amount"],
        dispute["id"],
        dispute["reason"],
    )
    assert (notice.gateway_reference, notice.currency) == ("pi_test_1", "USD")


@pytest.mark.parametrize(
    ("status", "kind"),
    [("won", NoticeKind.DISPUTE_WON), ("lost", NoticeKind.DISPUTE_LOST), ("warning_closed", NoticeKind.OTHER)],
)
def test_dispute_closed_by_status(gateway: StripeGateway, status: str, kind: NoticeKind) -> None:
    notice = read(gateway, event("charge.dispute.closed", fixture("dispute", status=status)))
    assert notice.kind is kind
    assert notice.gateway_reference is None  # the fixture's dispute names no PaymentIntent


def test_any_other_event_is_other(gateway: StripeGateway) -> None:
    plan_event = fixture("event")  # Stripe's own fixture event: plan.created
    notice = read(gateway, plan_event)
    assert (notice.kind, notice.event_id, notice.amount_minor, notice.payment_id) == (
        NoticeKind.OTHER,
        plan_event["id"],
        None,
        None,
    )
    assert notice.occurred_at_ms == plan_event["created"] * 1000
