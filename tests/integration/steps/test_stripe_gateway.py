"""The StripeGateway adapter against the local Stripe server (localstripe behind the front, a real process): every
port operation, every test token, idempotent replays, unknown outcomes resolved by lookup or by the retry with the
same key, and the error mapping."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from local.stack.process import free_port
from local.stripe.front import STRIPE_TOKENS
from local.testing.stripe_server import running_stripe_server
from steps.gateway import Gateway, Operation, idempotency_key
from steps.gateway.notices import WebhookSource
from steps.gateway.port import (
    DeclineReason,
    GatewayOutcomeUnknown,
    GatewayRejected,
    GatewayResult,
    GatewayStatus,
    GatewayUnreachable,
    PaymentSnapshot,
    RefundSnapshot,
)
from steps.gateway.stripe import StripeGateway

API_KEY = "sk_test_paysaga_local"
AMOUNT = 12_345
CURRENCY = "EUR"
CLIENT_TIMEOUT_MS = 600  # what a withheld answer costs a test
SLOW_MS = 400  # pm_card_visa_slow: also the window in which a second request meets the first
PATIENT_TIMEOUT_MS = 5_000  # for the tests that wait on pm_card_visa_slow


@pytest.fixture(scope="session")
def stripe_url() -> Iterator[str]:
    with running_stripe_server("--slow-ms", str(SLOW_MS)) as url:
        yield url


@pytest.fixture
def gateway(stripe_url: str) -> Iterator[StripeGateway]:
    with StripeGateway(api_key=API_KEY, api_base=stripe_url, timeout_ms=CLIENT_TIMEOUT_MS) as adapter:
        yield adapter


@pytest.fixture
def patient_gateway(stripe_url: str) -> Iterator[StripeGateway]:
    with StripeGateway(api_key=API_KEY, api_base=stripe_url, timeout_ms=PATIENT_TIMEOUT_MS) as adapter:
        yield adapter


@pytest.fixture
def admin(stripe_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stripe_url, timeout=5.0) as client:
        yield client


@pytest.fixture
def payment_id() -> str:
    """A payment id of this test alone (the server is shared by the session)."""
    return f"pay_{uuid.uuid4().hex[:16]}"


def calls(admin: httpx.Client, payment_id: str) -> list[dict[str, Any]]:
    response = admin.get("/_calls", params={"payment_id": payment_id})
    response.raise_for_status()
    rows: list[dict[str, Any]] = response.json()["calls"]
    return rows


def committed(admin: httpx.Client, payment_id: str, operation: Operation) -> list[dict[str, Any]]:
    """The calls that changed the gateway's state: what "one authorization, at most one capture" counts."""
    return [row for row in calls(admin, payment_id) if row["operation"] == operation.value and row["committed"]]


def authorize(
    gateway: StripeGateway, payment_id: str, token: str = "pm_card_visa", amount: int = AMOUNT
) -> GatewayResult:
    return gateway.authorize(payment_id=payment_id, amount_minor=amount, currency=CURRENCY, card_token=token)


def snapshot(gateway: StripeGateway, payment_id: str, reference: str | None = None) -> PaymentSnapshot:
    found = gateway.lookup(payment_id=payment_id, gateway_reference=reference)
    assert found is not None, f"the gateway does not know {payment_id}"
    return found


def test_the_adapter_is_a_gateway_and_a_webhook_source(gateway: StripeGateway) -> None:
    assert isinstance(gateway, Gateway)
    assert isinstance(gateway, WebhookSource)
    assert gateway.name == "stripe"


def test_every_documented_token_exists_and_nothing_else() -> None:
    assert set(STRIPE_TOKENS) == {
        "pm_card_visa",
        "pm_card_visa_chargeDeclined",
        "pm_card_chargeDeclinedInsufficientFunds",
        "pm_card_chargeDeclinedFraudulent",
        "pm_card_chargeDeclinedExpiredCard",
        "pm_card_visa_timeoutBeforeSend",
        "pm_card_visa_timeoutAfterCommit",
        "pm_card_visa_5xxThenSuccess",
        "pm_card_visa_slow",
    }


def test_approve_authorizes_for_manual_capture(gateway: StripeGateway, payment_id: str) -> None:
    result = authorize(gateway, payment_id)
    assert (result.operation, result.status) == (Operation.AUTHORIZE, GatewayStatus.AUTHORIZED)
    assert (result.payment_id, result.idempotency_key) == (payment_id, idempotency_key(Operation.AUTHORIZE, payment_id))
    assert result.gateway_reference.startswith("pi_")
    assert result.operation_reference == result.gateway_reference
    assert (result.amount_minor, result.currency) == (AMOUNT, CURRENCY)
    assert (result.decline_reason, result.decline_detail, result.replayed) == (None, None, False)
    expected = PaymentSnapshot(
        payment_id=payment_id,
        gateway_reference=result.gateway_reference,
        status=GatewayStatus.AUTHORIZED,
        amount_minor=AMOUNT,
        currency=CURRENCY,
        captured_minor=0,
        refunded_minor=0,
    )
    assert snapshot(gateway, payment_id) == expected  # by search on metadata.payment_id
    assert snapshot(gateway, payment_id, result.gateway_reference) == expected  # by id


@pytest.mark.parametrize(
    ("token", "reason", "detail"),
    [
        ("pm_card_visa_chargeDeclined", DeclineReason.CARD_DECLINED, "generic_decline"),
        ("pm_card_chargeDeclinedInsufficientFunds", DeclineReason.INSUFFICIENT_FUNDS, "insufficient_funds"),
        ("pm_card_chargeDeclinedFraudulent", DeclineReason.FRAUDULENT, "fraudulent"),
        ("pm_card_chargeDeclinedExpiredCard", DeclineReason.EXPIRED_CARD, "expired_card"),
    ],
)
def test_declines_carry_their_reason_and_cannot_be_captured(
    gateway: StripeGateway, admin: httpx.Client, payment_id: str, token: str, reason: DeclineReason, detail: str
) -> None:
    result = authorize(gateway, payment_id, token)
    assert (result.status, result.decline_reason, result.decline_detail) == (GatewayStatus.DECLINED, reason, detail)
    assert result.gateway_reference.startswith("pi_")
    found = snapshot(gateway, payment_id)
    assert (found.status, found.decline_reason, found.gateway_reference) == (
        GatewayStatus.DECLINED,
        reason,
        result.gateway_reference,
    )
    assert snapshot(gateway, payment_id, result.gateway_reference) == found
    replay = authorize(gateway, payment_id, token)
    assert replay.replayed and (replay.decline_reason, replay.gateway_reference) == (reason, result.gateway_reference)
    assert len(committed(admin, payment_id, Operation.AUTHORIZE)) == 1
    with pytest.raises(GatewayRejected) as rejected:
        gateway.capture(
            payment_id=payment_id, gateway_reference=result.gateway_reference, amount_minor=AMOUNT, currency=CURRENCY
        )
    assert (rejected.value.status_code, rejected.value.code) == (400, "payment_intent_unexpected_state")


def test_partial_capture_then_full_refund(gateway: StripeGateway, payment_id: str) -> None:
    reference = authorize(gateway, payment_id).gateway_reference
    captured = gateway.capture(
        payment_id=payment_id, gateway_reference=reference, amount_minor=10_000, currency=CURRENCY
    )
    assert (captured.operation, captured.status, captured.amount_minor) == (
        Operation.CAPTURE,
        GatewayStatus.CAPTURED,
        10_000,
    )
    assert (captured.idempotency_key, captured.gateway_reference) == (f"{payment_id}:capture", reference)
    found = snapshot(gateway, payment_id, reference)
    assert (found.status, found.amount_minor, found.captured_minor, found.refunded_minor) == (
        GatewayStatus.CAPTURED,
        AMOUNT,
        10_000,
        0,  # the 2 345 a partial capture releases is not a refund
    )
    refunded = gateway.refund(
        payment_id=payment_id, gateway_reference=reference, amount_minor=10_000, currency=CURRENCY
    )
    assert (refunded.status, refunded.amount_minor, refunded.idempotency_key) == (
        GatewayStatus.REFUNDED,
        10_000,
        f"{payment_id}:refund",
    )
    assert refunded.operation_reference.startswith("re_")
    found = snapshot(gateway, payment_id)
    assert (found.status, found.captured_minor, found.refunded_minor) == (GatewayStatus.REFUNDED, 10_000, 10_000)
    replay = gateway.refund(payment_id=payment_id, gateway_reference=reference, amount_minor=10_000, currency=CURRENCY)
    assert replay.replayed and replay.operation_reference == refunded.operation_reference


def test_a_partial_refund_leaves_the_payment_captured(gateway: StripeGateway, payment_id: str) -> None:
    reference = authorize(gateway, payment_id).gateway_reference
    gateway.capture(payment_id=payment_id, gateway_reference=reference, amount_minor=AMOUNT, currency=CURRENCY)
    gateway.refund(payment_id=payment_id, gateway_reference=reference, amount_minor=345, currency=CURRENCY)
    found = snapshot(gateway, payment_id, reference)
    assert (found.status, found.captured_minor, found.refunded_minor) == (GatewayStatus.CAPTURED, AMOUNT, 345)


def test_refunding_more_than_was_captured_is_rejected(gateway: StripeGateway, payment_id: str) -> None:
    reference = authorize(gateway, payment_id).gateway_reference
    gateway.capture(payment_id=payment_id, gateway_reference=reference, amount_minor=5_000, currency=CURRENCY)
    with pytest.raises(GatewayRejected) as rejected:
        gateway.refund(payment_id=payment_id, gateway_reference=reference, amount_minor=5_001, currency=CURRENCY)
    assert (rejected.value.status_code, rejected.value.code) == (400, "amount_too_large")


def test_several_partial_refunds_each_under_its_refund_id(
    gateway: StripeGateway, admin: httpx.Client, payment_id: str
) -> None:
    reference = authorize(gateway, payment_id).gateway_reference
    gateway.capture(payment_id=payment_id, gateway_reference=reference, amount_minor=10_000, currency=CURRENCY)
    first_id, second_id = "7261234567890123456", "7261234567890123457"
    first = gateway.refund(payment_id=payment_id, gateway_reference=reference, amount_minor=3_000, currency=CURRENCY,
                           refund_id=first_id)
    second = gateway.refund(payment_id=payment_id, gateway_reference=reference, amount_minor=4_000,
                            currency=CURRENCY, refund_id=second_id)
    assert (first.status, first.amount_minor, first.idempotency_key) == (
        GatewayStatus.REFUNDED, 3_000, f"{payment_id}:refund:{first_id}")
    assert (second.status, second.idempotency_key) == (GatewayStatus.REFUNDED, f"{payment_id}:refund:{second_id}")
    assert first.operation_reference.startswith("re_") and first.operation_reference != second.operation_reference
    # By the refund's id when the caller has it, else found among the PaymentIntent's refunds by metadata.refund_id.
    assert gateway.lookup_refund(payment_id=payment_id, gateway_reference=reference, refund_id=first_id,
                                 operation_reference=first.operation_reference) == RefundSnapshot(
        refund_id=first_id, operation_reference=first.operation_reference, status=GatewayStatus.REFUNDED,
        amount_minor=3_000, currency=CURRENCY)
    assert gateway.lookup_refund(payment_id=payment_id, gateway_reference=reference,
                                 refund_id=second_id) == RefundSnapshot(
        refund_id=second_id, operation_reference=second.operation_reference, status=GatewayStatus.REFUNDED,
        amount_minor=4_000, currency=CURRENCY)
    found = snapshot(gateway, payment_id, reference)
    assert (found.status, found.captured_minor, found.refunded_minor) == (GatewayStatus.CAPTURED, 10_000, 7_000)

    # The same refund id again is the same refund: Stripe replays it under the key.
    again = gateway.refund(payment_id=payment_id, gateway_reference=reference, amount_minor=3_000, currency=CURRENCY,
                           refund_id=first_id)
    assert again.replayed and again.operation_reference == first.operation_reference
    assert len(committed(admin, payment_id, Operation.REFUND)) == 2
    assert snapshot(gateway, payment_id, reference).refunded_minor == 7_000

    # Beyond what remains (3 000): refused, nothing taken; what remains still goes back.
    with pytest.raises(GatewayRejected) as rejected:
        gateway.refund(payment_id=payment_id, gateway_reference=reference, amount_minor=3_001, currency=CURRENCY,
                       refund_id="3")
    assert (rejected.value.status_code, rejected.value.code) == (400, "amount_too_large")
    assert gateway.lookup_refund(payment_id=payment_id, gateway_reference=reference, refund_id="3") is None
    last = gateway.refund(payment_id=payment_id, gateway_reference=reference, amount_minor=3_000, currency=CURRENCY,
                          refund_id="4")
    assert last.status is GatewayStatus.REFUNDED
    assert snapshot(gateway, payment_id, reference).refunded_minor == 10_000


def test_lookup_of_a_refund_never_made_is_none(gateway: StripeGateway, payment_id: str) -> None:
    reference = authorize(gateway, payment_id).gateway_reference
    gateway.capture(payment_id=payment_id, gateway_reference=reference, amount_minor=AMOUNT, currency=CURRENCY)
    gateway.refund(payment_id=payment_id, gateway_reference=reference, amount_minor=100, currency=CURRENCY,
                   refund_id="1")
    assert gateway.lookup_refund(payment_id=payment_id, gateway_reference=reference, refund_id="2") is None
    assert gateway.lookup_refund(payment_id=payment_id, gateway_reference=reference, refund_id="2",
                                 operation_reference="re_neverMade") is None


def test_a_refund_of_another_refund_id_is_not_trusted(gateway: StripeGateway, payment_id: str) -> None:
    reference = authorize(gateway, payment_id).gateway_reference
    gateway.capture(payment_id=payment_id, gateway_reference=reference, amount_minor=AMOUNT, currency=CURRENCY)
    made = gateway.refund(payment_id=payment_id, gateway_reference=reference, amount_minor=100, currency=CURRENCY,
                          refund_id="1")
    with pytest.raises(GatewayOutcomeUnknown):
        gateway.lookup_refund(payment_id=payment_id, gateway_reference=reference, refund_id="2",
                              operation_reference=made.operation_reference)


def test_capturing_more_than_was_authorized_is_rejected(gateway: StripeGateway, payment_id: str) -> None:
    reference = authorize(gateway, payment_id).gateway_reference
    with pytest.raises(GatewayRejected) as rejected:
        gateway.capture(payment_id=payment_id, gateway_reference=reference, amount_minor=AMOUNT + 1, currency=CURRENCY)
    assert (rejected.value.status_code, rejected.value.code) == (400, "amount_too_large")
    assert snapshot(gateway, payment_id).status is GatewayStatus.AUTHORIZED


def test_cancel_voids_and_nothing_can_be_captured_after(
    gateway: StripeGateway, admin: httpx.Client, payment_id: str
) -> None:
    reference = authorize(gateway, payment_id).gateway_reference
    voided = gateway.cancel(payment_id=payment_id, gateway_reference=reference)
    assert (voided.operation, voided.status, voided.amount_minor, voided.currency) == (
        Operation.VOID,
        GatewayStatus.VOIDED,
        AMOUNT,
        CURRENCY,
    )
    assert voided.idempotency_key == f"{payment_id}:void"
    assert snapshot(gateway, payment_id).status is GatewayStatus.VOIDED
    assert gateway.cancel(payment_id=payment_id, gateway_reference=reference).replayed
    with pytest.raises(GatewayRejected) as rejected:
        gateway.capture(payment_id=payment_id, gateway_reference=reference, amount_minor=AMOUNT, currency=CURRENCY)
    assert rejected.value.code == "payment_intent_unexpected_state"
    assert [row["outcome"] for row in calls(admin, payment_id)] == [
        "authorized",
        "voided",
        "voided",
        "payment_intent_unexpected_state",
    ]


def test_lookup_of_a_payment_never_authorized_is_none(gateway: StripeGateway, payment_id: str) -> None:
    assert gateway.lookup(payment_id=payment_id) is None
    assert gateway.lookup(payment_id=payment_id, gateway_reference="pi_doesnotexist") is None


def test_lookup_finds_a_payment_id_with_a_quote(gateway: StripeGateway) -> None:
    odd = f"pay_o'brien\\{uuid.uuid4().hex[:8]}"
    result = authorize(gateway, odd)
    assert snapshot(gateway, odd).gateway_reference == result.gateway_reference


def test_lookup_by_the_reference_of_another_payment_is_not_trusted(gateway: StripeGateway, payment_id: str) -> None:
    other = authorize(gateway, payment_id + "_other").gateway_reference
    with pytest.raises(GatewayOutcomeUnknown, match="another payment"):
        gateway.lookup(payment_id=payment_id, gateway_reference=other)


def test_a_repeated_key_returns_the_first_answer(gateway: StripeGateway, admin: httpx.Client, payment_id: str) -> None:
    first = authorize(gateway, payment_id)
    second = authorize(gateway, payment_id)
    assert second.replayed is True and first.replayed is False
    assert second.gateway_reference == first.gateway_reference
    rows = calls(admin, payment_id)
    assert [(row["committed"], row["replayed"]) for row in rows] == [(True, False), (False, True)]


def test_the_same_key_with_another_amount_is_rejected(
    gateway: StripeGateway, admin: httpx.Client, payment_id: str
) -> None:
    authorize(gateway, payment_id)
    with pytest.raises(GatewayRejected) as rejected:
        authorize(gateway, payment_id, amount=AMOUNT - 1)
    assert (rejected.value.status_code, rejected.value.code) == (400, "idempotency_error")
    assert rejected.value.operation is Operation.AUTHORIZE and rejected.value.payment_id == payment_id
    assert len(committed(admin, payment_id, Operation.AUTHORIZE)) == 1
    assert snapshot(gateway, payment_id).amount_minor == AMOUNT


def test_an_unknown_card_token_is_rejected(gateway: StripeGateway, payment_id: str) -> None:
    with pytest.raises(GatewayRejected) as rejected:
        authorize(gateway, payment_id, "pm_card_unknown")
    assert (rejected.value.status_code, rejected.value.code) == (400, "resource_missing")


def test_timeout_before_send_then_the_retry_authorizes_once(
    gateway: StripeGateway, admin: httpx.Client, payment_id: str
) -> None:
    token = "pm_card_visa_timeoutBeforeSend"
    with pytest.raises(GatewayOutcomeUnknown, match="ReadTimeout"):
        authorize(gateway, payment_id, token)
    assert gateway.lookup(payment_id=payment_id) is None  # resolved: never taken, safe to resend
    result = authorize(gateway, payment_id, token)
    assert (result.status, result.replayed) == (GatewayStatus.AUTHORIZED, False)
    assert [row["outcome"] for row in calls(admin, payment_id)] == ["dropped_before_processing", "authorized"]
    assert len(committed(admin, payment_id, Operation.AUTHORIZE)) == 1


def test_timeout_after_commit_is_resolved_by_lookup_and_the_retry_replays(
    gateway: StripeGateway, admin: httpx.Client, payment_id: str
) -> None:
    token = "pm_card_visa_timeoutAfterCommit"
    with pytest.raises(GatewayOutcomeUnknown):
        authorize(gateway, payment_id, token)
    found = snapshot(gateway, payment_id)  # the unknown outcome, resolved: it was authorized
    assert found.status is GatewayStatus.AUTHORIZED
    retry = authorize(gateway, payment_id, token)
    assert (retry.status, retry.replayed, retry.gateway_reference) == (
        GatewayStatus.AUTHORIZED,
        True,
        found.gateway_reference,
    )
    assert len(committed(admin, payment_id, Operation.AUTHORIZE)) == 1


def test_5xx_is_an_unknown_outcome_and_the_retry_authorizes_once(
    gateway: StripeGateway, admin: httpx.Client, payment_id: str
) -> None:
    token = "pm_card_visa_5xxThenSuccess"
    with pytest.raises(GatewayOutcomeUnknown, match="500"):
        authorize(gateway, payment_id, token)
    assert gateway.lookup(payment_id=payment_id) is None
    result = authorize(gateway, payment_id, token)
    assert (result.status, result.replayed) == (GatewayStatus.AUTHORIZED, False)
    assert [row["outcome"] for row in calls(admin, payment_id)] == ["unavailable", "authorized"]
    assert len(committed(admin, payment_id, Operation.AUTHORIZE)) == 1


def test_a_fault_token_strikes_each_operation_once(
    gateway: StripeGateway, admin: httpx.Client, payment_id: str
) -> None:
    token = "pm_card_visa_5xxThenSuccess"
    with pytest.raises(GatewayOutcomeUnknown):
        authorize(gateway, payment_id, token)
    reference = authorize(gateway, payment_id, token).gateway_reference
    with pytest.raises(GatewayOutcomeUnknown):
        gateway.capture(payment_id=payment_id, gateway_reference=reference, amount_minor=AMOUNT, currency=CURRENCY)
    assert snapshot(gateway, payment_id).status is GatewayStatus.AUTHORIZED  # nothing processed
    gateway.capture(payment_id=payment_id, gateway_reference=reference, amount_minor=AMOUNT, currency=CURRENCY)
    with pytest.raises(GatewayOutcomeUnknown):
        gateway.refund(payment_id=payment_id, gateway_reference=reference, amount_minor=AMOUNT, currency=CURRENCY)
    gateway.refund(payment_id=payment_id, gateway_reference=reference, amount_minor=AMOUNT, currency=CURRENCY)
    assert [(row["operation"], row["outcome"]) for row in calls(admin, payment_id)] == [
        ("authorize", "unavailable"),
        ("authorize", "authorized"),
        ("capture", "unavailable"),
        ("capture", "captured"),
        ("refund", "unavailable"),
        ("refund", "refunded"),
    ]


def test_timeout_after_commit_on_capture_and_cancel(
    gateway: StripeGateway, admin: httpx.Client, payment_id: str
) -> None:
    token = "pm_card_visa_timeoutAfterCommit"
    with pytest.raises(GatewayOutcomeUnknown):
        authorize(gateway, payment_id, token)
    reference = snapshot(gateway, payment_id).gateway_reference
    with pytest.raises(GatewayOutcomeUnknown):
        gateway.capture(payment_id=payment_id, gateway_reference=reference, amount_minor=AMOUNT, currency=CURRENCY)
    found = snapshot(gateway, payment_id, reference)
    assert (found.status, found.captured_minor) == (GatewayStatus.CAPTURED, AMOUNT)  # it did take effect
    retry = gateway.capture(payment_id=payment_id, gateway_reference=reference, amount_minor=AMOUNT, currency=CURRENCY)
    assert retry.replayed and retry.status is GatewayStatus.CAPTURED
    assert len(committed(admin, payment_id, Operation.CAPTURE)) == 1

    other = payment_id + "_void"
    with pytest.raises(GatewayOutcomeUnknown):
        authorize(gateway, other, token)
    other_reference = snapshot(gateway, other).gateway_reference
    with pytest.raises(GatewayOutcomeUnknown):
        gateway.cancel(payment_id=other, gateway_reference=other_reference)
    assert snapshot(gateway, other).status is GatewayStatus.VOIDED
    assert gateway.cancel(payment_id=other, gateway_reference=other_reference).replayed


def test_slow_answers_within_the_timeout(patient_gateway: StripeGateway, payment_id: str) -> None:
    started = time.monotonic()
    result = authorize(patient_gateway, payment_id, "pm_card_visa_slow")
    assert result.status is GatewayStatus.AUTHORIZED
    assert time.monotonic() - started >= SLOW_MS / 1000


def test_a_concurrent_request_with_the_same_key_is_an_unknown_outcome(
    patient_gateway: StripeGateway, admin: httpx.Client, payment_id: str
) -> None:
    """Stripe answers 409 idempotency_key_in_use while the first request runs: this one did nothing, but the
    operation under the key may be taking effect, so the caller must look up or retry, never conclude."""
    start = threading.Barrier(2)
    outcomes: list[object] = []

    def attempt() -> None:
        start.wait()
        try:
            outcomes.append(authorize(patient_gateway, payment_id, "pm_card_visa_slow"))
        except GatewayOutcomeUnknown as unknown:
            outcomes.append(unknown)

    threads = [threading.Thread(target=attempt) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(type(outcome).__name__ for outcome in outcomes) == ["GatewayOutcomeUnknown", "GatewayResult"]
    assert "idempotency_key_in_use" in next(str(o) for o in outcomes if isinstance(o, GatewayOutcomeUnknown))
    assert len(committed(admin, payment_id, Operation.AUTHORIZE)) == 1


def test_nobody_listening_is_unreachable(payment_id: str) -> None:
    with StripeGateway(api_key=API_KEY, api_base=f"http://127.0.0.1:{free_port()}", timeout_ms=500) as adapter:
        with pytest.raises(GatewayUnreachable, match="ConnectError"):
            authorize(adapter, payment_id)
        with pytest.raises(GatewayUnreachable):
            adapter.lookup(payment_id=payment_id)


class _WrongAnswers(BaseHTTPRequestHandler):
    """A real HTTP server that answers 200 with what is not the contract: another payment's PaymentIntent, or text."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        if "not-json" in self.headers.get("idempotency-key", ""):
            body = b"<html>gateway error</html>"
        else:
            intent = {
                "object": "payment_intent",
                "id": "pi_x",
                "status": "requires_capture",
                "amount": AMOUNT,
                "currency": "eur",
                "metadata": {"payment_id": "someone_else"},
            }
            body = json.dumps(intent).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: Any) -> None:
        pass


def test_an_answer_that_is_not_the_contract_is_an_unknown_outcome() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _WrongAnswers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        with StripeGateway(api_key=API_KEY, api_base=base, timeout_ms=2_000) as adapter:
            with pytest.raises(GatewayOutcomeUnknown, match="another payment"):
                authorize(adapter, "pay_mine")
            with pytest.raises(GatewayOutcomeUnknown):
                authorize(adapter, "pay_not-json")
    finally:
        server.shutdown()
        server.server_close()


def test_constructor_refuses_bad_settings() -> None:
    with pytest.raises(ValueError, match="api_key"):
        StripeGateway(api_key="", timeout_ms=1_000)
    with pytest.raises(ValueError, match="timeouts"):
        StripeGateway(api_key=API_KEY, timeout_ms=0)


def test_money_is_checked_before_anything_is_sent(gateway: StripeGateway, admin: httpx.Client, payment_id: str) -> None:
    with pytest.raises(ValueError, match="amount_minor"):
        gateway.authorize(payment_id=payment_id, amount_minor=12.5, currency=CURRENCY, card_token="pm_card_visa")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="payment_id"):
        gateway.authorize(payment_id="a:b", amount_minor=AMOUNT, currency=CURRENCY, card_token="pm_card_visa")
    assert calls(admin, payment_id) == []
