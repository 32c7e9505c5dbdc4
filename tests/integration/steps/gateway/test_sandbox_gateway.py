"""The sandbox gateway server through the SandboxGateway adapter: every test token, idempotent replays, unknown
outcomes resolved by lookup, the call log, and the money operations after authorization."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from local.sandbox.server import SANDBOX_TOKENS
from local.stack.process import free_port
from steps.gateway import (
    DeclineReason,
    GatewayOutcomeUnknown,
    GatewayRejected,
    GatewayStatus,
    GatewayUnreachable,
    Operation,
    PaymentSnapshot,
    RefundSnapshot,
    SandboxGateway,
)
from tests.integration.steps.gateway.conftest import ref

AMOUNT = 12_345
CURRENCY = "EUR"


def calls(admin: httpx.Client, payment_id: str) -> list[dict[str, Any]]:
    response = admin.get("/_sandbox/calls", params={"payment_id": payment_id})
    response.raise_for_status()
    entries: list[dict[str, Any]] = response.json()["calls"]
    return entries


def committed(admin: httpx.Client, payment_id: str, operation: Operation) -> list[dict[str, Any]]:
    """The calls that changed the gateway's state: what "one authorization, at most one capture" counts."""
    return [c for c in calls(admin, payment_id) if c["operation"] == operation.value and c["committed"]]


def authorize(gateway: SandboxGateway, payment_id: str, token: str = "tok_approve", amount: int = AMOUNT) -> Any:
    return gateway.authorize(payment_id=payment_id, amount_minor=amount, currency=CURRENCY, card_token=token)


def snapshot(gateway: SandboxGateway, payment_id: str) -> PaymentSnapshot:
    found = gateway.lookup(payment_id=payment_id)
    assert found is not None, f"the gateway does not know {payment_id}"
    return found


def test_every_documented_token_exists_and_nothing_else() -> None:
    assert set(SANDBOX_TOKENS) == {
        "tok_approve",
        "tok_decline",
        "tok_insufficient_funds",
        "tok_fraudulent",
        "tok_timeout_before_send",
        "tok_timeout_after_commit",
        "tok_5xx_then_success",
        "tok_slow",
        "tok_async_capture",
        "tok_async_capture_fails",
        "tok_capture_fails",
        "tok_refund_declined",
    }


def test_approve_authorizes_with_the_payment_id_as_key(gateway: SandboxGateway) -> None:
    result = authorize(gateway, "pay_1")
    assert result.operation is Operation.AUTHORIZE
    assert result.status is GatewayStatus.AUTHORIZED
    assert (result.payment_id, result.idempotency_key) == ("pay_1", "pay_1")
    assert result.gateway_reference.startswith("sbx_pay_")
    assert result.operation_reference == result.gateway_reference
    assert (result.amount_minor, result.currency) == (AMOUNT, CURRENCY)
    assert result.decline_reason is None
    assert result.replayed is False
    assert snapshot(gateway, "pay_1") == PaymentSnapshot(
        payment_id="pay_1",
        gateway_reference=result.gateway_reference,
        status=GatewayStatus.AUTHORIZED,
        amount_minor=AMOUNT,
        currency=CURRENCY,
        captured_minor=0,
        refunded_minor=0,
        decline_reason=None,
    )


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("tok_decline", DeclineReason.CARD_DECLINED),
        ("tok_insufficient_funds", DeclineReason.INSUFFICIENT_FUNDS),
        ("tok_fraudulent", DeclineReason.FRAUDULENT),
    ],
)
def test_declines_carry_their_reason_and_cannot_be_captured(
    gateway: SandboxGateway, token: str, reason: DeclineReason
) -> None:
    result = authorize(gateway, "pay_d", token)
    assert result.status is GatewayStatus.DECLINED
    assert result.decline_reason is reason
    assert result.decline_detail == reason.value
    found = snapshot(gateway, "pay_d")
    assert (found.status, found.decline_reason) == (GatewayStatus.DECLINED, reason)
    replay = authorize(gateway, "pay_d", token)
    assert replay.replayed and replay.decline_reason is reason
    with pytest.raises(GatewayRejected) as rejected:
        gateway.capture(
            payment_id="pay_d", gateway_reference=ref(gateway, "pay_d"), amount_minor=AMOUNT, currency=CURRENCY
        )
    assert (rejected.value.status_code, rejected.value.code) == (409, "invalid_state")


def test_a_repeated_key_returns_the_first_answer(gateway: SandboxGateway, sandbox_admin: httpx.Client) -> None:
    first = authorize(gateway, "pay_r")
    second = authorize(gateway, "pay_r")
    assert second.replayed is True
    assert second.gateway_reference == first.gateway_reference
    assert {**second.__dict__, "replayed": False} == first.__dict__
    log = calls(sandbox_admin, "pay_r")
    assert [(c["outcome"], c["replayed"], c["committed"]) for c in log] == [
        ("authorized", False, True),
        ("authorized", True, False),
    ]


def test_a_repeated_key_with_another_amount_is_rejected(gateway: SandboxGateway) -> None:
    authorize(gateway, "pay_x", amount=1_000)
    with pytest.raises(GatewayRejected) as rejected:
        authorize(gateway, "pay_x", amount=2_000)
    assert (rejected.value.status_code, rejected.value.code) == (422, "idempotency_key_reused")
    assert rejected.value.operation is Operation.AUTHORIZE
    assert snapshot(gateway, "pay_x").amount_minor == 1_000


def test_one_payment_under_another_key_is_refused_by_the_gateway(
    gateway: SandboxGateway, sandbox_admin: httpx.Client
) -> None:
    """Property 11's net at the gateway: the same payment id authorized under a second key is an error."""
    authorize(gateway, "pay_k")
    body = {"payment_id": "pay_k", "amount_minor": AMOUNT, "currency": CURRENCY, "card_token": "tok_approve"}
    response = sandbox_admin.post("/v1/payments", json=body, headers={"Idempotency-Key": "another-key"})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "payment_exists"
    assert len(committed(sandbox_admin, "pay_k", Operation.AUTHORIZE)) == 1


def test_timeout_before_send_is_unknown_then_lookup_finds_nothing_and_a_retry_succeeds(
    gateway: SandboxGateway, sandbox_admin: httpx.Client
) -> None:
    with pytest.raises(GatewayOutcomeUnknown) as unknown:
        authorize(gateway, "pay_tb", "tok_timeout_before_send")
    assert (unknown.value.operation, unknown.value.payment_id) == (Operation.AUTHORIZE, "pay_tb")
    assert gateway.lookup(payment_id="pay_tb") is None  # not processed: safe to send again with the same key
    result = authorize(gateway, "pay_tb", "tok_timeout_before_send")
    assert result.status is GatewayStatus.AUTHORIZED and result.replayed is False
    log = calls(sandbox_admin, "pay_tb")
    assert [(c["outcome"], c["committed"]) for c in log] == [
        ("dropped_before_processing", False),
        ("authorized", True),
    ]


def test_timeout_after_commit_is_unknown_and_lookup_finds_the_authorization(
    gateway: SandboxGateway, sandbox_admin: httpx.Client
) -> None:
    with pytest.raises(GatewayOutcomeUnknown):
        authorize(gateway, "pay_ta", "tok_timeout_after_commit")
    found = snapshot(gateway, "pay_ta")
    assert found.status is GatewayStatus.AUTHORIZED
    retry = authorize(gateway, "pay_ta", "tok_timeout_after_commit")
    assert retry.replayed is True
    assert retry.gateway_reference == found.gateway_reference
    assert len(committed(sandbox_admin, "pay_ta", Operation.AUTHORIZE)) == 1


def test_timeout_after_commit_applies_to_the_first_capture_attempt_too(
    gateway: SandboxGateway, sandbox_admin: httpx.Client
) -> None:
    with pytest.raises(GatewayOutcomeUnknown):
        authorize(gateway, "pay_tc", "tok_timeout_after_commit")
    with pytest.raises(GatewayOutcomeUnknown) as unknown:
        gateway.capture(
            payment_id="pay_tc", gateway_reference=ref(gateway, "pay_tc"), amount_minor=AMOUNT, currency=CURRENCY
        )
    assert unknown.value.operation is Operation.CAPTURE
    found = snapshot(gateway, "pay_tc")
    assert (found.status, found.captured_minor) == (GatewayStatus.CAPTURED, AMOUNT)
    retry = gateway.capture(
        payment_id="pay_tc", gateway_reference=ref(gateway, "pay_tc"), amount_minor=AMOUNT, currency=CURRENCY
    )
    assert (retry.status, retry.replayed, retry.idempotency_key) == (GatewayStatus.CAPTURED, True, "pay_tc:capture")
    assert len(committed(sandbox_admin, "pay_tc", Operation.CAPTURE)) == 1


def test_5xx_then_success_is_unavailable_with_nothing_committed(
    gateway: SandboxGateway, sandbox_admin: httpx.Client
) -> None:
    with pytest.raises(GatewayUnreachable) as unavailable:
        authorize(gateway, "pay_5", "tok_5xx_then_success")
    assert unavailable.value.payment_id == "pay_5"
    assert gateway.lookup(payment_id="pay_5") is None
    assert authorize(gateway, "pay_5", "tok_5xx_then_success").status is GatewayStatus.AUTHORIZED
    log = calls(sandbox_admin, "pay_5")
    assert [(c["http_status"], c["outcome"], c["committed"]) for c in log] == [
        (503, "unavailable", False),
        (200, "authorized", True),
    ]


def test_slow_answers_within_the_client_timeout(gateway: SandboxGateway, sandbox_admin: httpx.Client) -> None:
    assert sandbox_admin.post("/_sandbox/config", json={"slow_ms": 100}).json()["config"]["slow_ms"] == 100
    assert authorize(gateway, "pay_s", "tok_slow").status is GatewayStatus.AUTHORIZED


def test_slow_past_the_client_timeout_is_unknown_and_still_lands(sandbox_admin: httpx.Client) -> None:
    """The delay is real: a client with a shorter timeout gives up, and the gateway acts anyway."""
    sandbox_admin.post("/_sandbox/config", json={"slow_ms": 600}).raise_for_status()
    with (
        SandboxGateway(base_url=str(sandbox_admin.base_url), timeout_ms=150) as impatient,
        pytest.raises(GatewayOutcomeUnknown),
    ):
        authorize(impatient, "pay_sl", "tok_slow")
    # The retry is delayed as long as the first attempt and arrived after it, so the first has committed by the
    # time the retry reaches the idempotency check: the retry replays it.
    with SandboxGateway(base_url=str(sandbox_admin.base_url), timeout_ms=2_000) as patient:
        retry = authorize(patient, "pay_sl", "tok_slow")
    assert retry.status is GatewayStatus.AUTHORIZED
    assert retry.replayed is True
    assert len(committed(sandbox_admin, "pay_sl", Operation.AUTHORIZE)) == 1


def test_latency_applies_to_every_request(sandbox_admin: httpx.Client) -> None:
    sandbox_admin.post("/_sandbox/config", json={"latency_ms": 400}).raise_for_status()
    with (
        SandboxGateway(base_url=str(sandbox_admin.base_url), timeout_ms=100) as impatient,
        pytest.raises(GatewayOutcomeUnknown),
    ):
        impatient.lookup(payment_id="pay_l")
    sandbox_admin.post("/_sandbox/reset").raise_for_status()
    with SandboxGateway(base_url=str(sandbox_admin.base_url), timeout_ms=100) as impatient:
        assert impatient.lookup(payment_id="pay_l") is None  # reset restored the startup latency (0)


def test_config_refuses_unknown_or_unbounded_values(sandbox_admin: httpx.Client) -> None:
    for body in ({"latency": 5}, {"latency_ms": -1}, {"slow_ms": 10**9}, {"latency_ms": 1.5}):
        response = sandbox_admin.post("/_sandbox/config", json=body)
        assert response.status_code == 400, body
        assert response.json()["error"]["code"] == "invalid_request"


def test_partial_capture(gateway: SandboxGateway) -> None:
    authorize(gateway, "pay_p", amount=1_000)
    result = gateway.capture(
        payment_id="pay_p", gateway_reference=ref(gateway, "pay_p"), amount_minor=600, currency=CURRENCY
    )
    assert (result.operation, result.status, result.amount_minor) == (Operation.CAPTURE, GatewayStatus.CAPTURED, 600)
    assert result.idempotency_key == "pay_p:capture"
    assert result.operation_reference.startswith("sbx_mod_")
    assert result.operation_reference != result.gateway_reference
    found = snapshot(gateway, "pay_p")
    assert (found.status, found.amount_minor, found.captured_minor) == (GatewayStatus.CAPTURED, 1_000, 600)


def test_capture_above_the_authorized_amount_is_rejected(gateway: SandboxGateway) -> None:
    authorize(gateway, "pay_big", amount=1_000)
    with pytest.raises(GatewayRejected) as rejected:
        gateway.capture(
            payment_id="pay_big", gateway_reference=ref(gateway, "pay_big"), amount_minor=1_001, currency=CURRENCY
        )
    assert (rejected.value.status_code, rejected.value.code) == (400, "amount_too_large")
    assert snapshot(gateway, "pay_big").status is GatewayStatus.AUTHORIZED


def test_capture_in_another_currency_is_rejected(gateway: SandboxGateway) -> None:
    authorize(gateway, "pay_cur")
    with pytest.raises(GatewayRejected) as rejected:
        gateway.capture(
            payment_id="pay_cur", gateway_reference=ref(gateway, "pay_cur"), amount_minor=AMOUNT, currency="USD"
        )
    assert rejected.value.code == "currency_mismatch"


def test_void_after_authorize(gateway: SandboxGateway, sandbox_admin: httpx.Client) -> None:
    auth = authorize(gateway, "pay_v")
    result = gateway.cancel(payment_id="pay_v", gateway_reference=ref(gateway, "pay_v"))
    assert (result.status, result.idempotency_key) == (GatewayStatus.VOIDED, "pay_v:void")
    assert result.gateway_reference == auth.gateway_reference
    assert snapshot(gateway, "pay_v").status is GatewayStatus.VOIDED
    assert gateway.cancel(payment_id="pay_v", gateway_reference=ref(gateway, "pay_v")).replayed is True
    with pytest.raises(GatewayRejected) as rejected:
        gateway.capture(
            payment_id="pay_v", gateway_reference=ref(gateway, "pay_v"), amount_minor=AMOUNT, currency=CURRENCY
        )
    assert rejected.value.code == "invalid_state"
    assert committed(sandbox_admin, "pay_v", Operation.CAPTURE) == []


def test_refund_after_capture(gateway: SandboxGateway) -> None:
    authorize(gateway, "pay_rf", amount=1_000)
    with pytest.raises(GatewayRejected) as before_capture:
        gateway.refund(
            payment_id="pay_rf", gateway_reference=ref(gateway, "pay_rf"), amount_minor=1_000, currency=CURRENCY
        )
    assert before_capture.value.code == "invalid_state"
    gateway.capture(payment_id="pay_rf", gateway_reference=ref(gateway, "pay_rf"), amount_minor=800, currency=CURRENCY)
    with pytest.raises(GatewayRejected) as too_much:
        gateway.refund(
            payment_id="pay_rf", gateway_reference=ref(gateway, "pay_rf"), amount_minor=801, currency=CURRENCY
        )
    assert too_much.value.code == "amount_too_large"
    result = gateway.refund(
        payment_id="pay_rf", gateway_reference=ref(gateway, "pay_rf"), amount_minor=800, currency=CURRENCY
    )
    assert (result.status, result.amount_minor, result.idempotency_key) == (
        GatewayStatus.REFUNDED,
        800,
        "pay_rf:refund",
    )
    found = snapshot(gateway, "pay_rf")
    assert (found.status, found.captured_minor, found.refunded_minor) == (GatewayStatus.REFUNDED, 800, 800)
    assert (
        gateway.refund(
            payment_id="pay_rf", gateway_reference=ref(gateway, "pay_rf"), amount_minor=800, currency=CURRENCY
        ).replayed
        is True
    )
    assert snapshot(gateway, "pay_rf").refunded_minor == 800


def captured(gateway: SandboxGateway, payment_id: str, amount: int, token: str = "tok_approve") -> str:
    """A payment authorized and captured for ``amount``; its gateway reference."""
    authorize(gateway, payment_id, token, amount=amount)
    reference = ref(gateway, payment_id)
    gateway.capture(payment_id=payment_id, gateway_reference=reference, amount_minor=amount, currency=CURRENCY)
    return reference


def test_several_partial_refunds_each_under_its_refund_id(gateway: SandboxGateway, sandbox_admin: httpx.Client) -> None:
    reference = captured(gateway, "pay_pr", 1_000)
    first = gateway.refund(payment_id="pay_pr", gateway_reference=reference, amount_minor=300, currency=CURRENCY,
                           refund_id="7261234567890123456")
    second = gateway.refund(payment_id="pay_pr", gateway_reference=reference, amount_minor=500, currency=CURRENCY,
                            refund_id="7261234567890123457")
    assert (first.status, first.amount_minor, first.idempotency_key) == (
        GatewayStatus.REFUNDED, 300, "pay_pr:refund:7261234567890123456")
    assert (second.status, second.idempotency_key) == (GatewayStatus.REFUNDED, "pay_pr:refund:7261234567890123457")
    assert first.operation_reference.startswith("sbx_mod_") and first.operation_reference != second.operation_reference
    assert (first.replayed, second.replayed) == (False, False)
    assert gateway.lookup_refund(payment_id="pay_pr", gateway_reference=reference,
                                 refund_id="7261234567890123456") == RefundSnapshot(
        refund_id="7261234567890123456", operation_reference=first.operation_reference,
        status=GatewayStatus.REFUNDED, amount_minor=300, currency=CURRENCY)
    found = gateway.lookup_refund(payment_id="pay_pr", gateway_reference=reference, refund_id="7261234567890123457",
                                  operation_reference=second.operation_reference)
    assert found is not None and (found.status, found.amount_minor) == (GatewayStatus.REFUNDED, 500)
    assert snapshot(gateway, "pay_pr").refunded_minor == 800

    # The same refund id again is the same refund: replayed, nothing more given back.
    again = gateway.refund(payment_id="pay_pr", gateway_reference=reference, amount_minor=300, currency=CURRENCY,
                           refund_id="7261234567890123456")
    assert again.replayed is True and again.operation_reference == first.operation_reference
    assert snapshot(gateway, "pay_pr").refunded_minor == 800
    assert len(committed(sandbox_admin, "pay_pr", Operation.REFUND)) == 2

    # Beyond what remains (200 of 1000): the gateway refuses it, and nothing was taken.
    with pytest.raises(GatewayRejected) as too_much:
        gateway.refund(payment_id="pay_pr", gateway_reference=reference, amount_minor=201, currency=CURRENCY,
                       refund_id="7261234567890123458")
    assert (too_much.value.status_code, too_much.value.code) == (400, "amount_too_large")
    assert gateway.lookup_refund(payment_id="pay_pr", gateway_reference=reference,
                                 refund_id="7261234567890123458") is None
    # What remains, exactly, still goes back.
    last = gateway.refund(payment_id="pay_pr", gateway_reference=reference, amount_minor=200, currency=CURRENCY,
                          refund_id="7261234567890123458")
    assert last.status is GatewayStatus.REFUNDED
    assert snapshot(gateway, "pay_pr").refunded_minor == 1_000


def test_the_same_refund_id_with_another_amount_is_rejected(gateway: SandboxGateway) -> None:
    reference = captured(gateway, "pay_ra", 1_000)
    gateway.refund(payment_id="pay_ra", gateway_reference=reference, amount_minor=100, currency=CURRENCY,
                   refund_id="11")
    with pytest.raises(GatewayRejected) as reused:
        gateway.refund(payment_id="pay_ra", gateway_reference=reference, amount_minor=200, currency=CURRENCY,
                       refund_id="11")
    assert reused.value.code == "idempotency_key_reused"


def test_lookup_of_a_refund_never_made_is_none(gateway: SandboxGateway) -> None:
    reference = captured(gateway, "pay_rn", 1_000)
    assert gateway.lookup_refund(payment_id="pay_rn", gateway_reference=reference, refund_id="42") is None
    assert gateway.lookup_refund(payment_id="pay_unknown", gateway_reference="sbx_pay_0", refund_id="42") is None


def test_a_declined_refund_is_refund_failed_and_gives_nothing_back(gateway: SandboxGateway) -> None:
    reference = captured(gateway, "pay_rd", 1_000, token="tok_refund_declined")
    assert snapshot(gateway, "pay_rd").status is GatewayStatus.CAPTURED
    result = gateway.refund(payment_id="pay_rd", gateway_reference=reference, amount_minor=400, currency=CURRENCY,
                            refund_id="7261234567890123999")
    assert (result.status, result.decline_detail, result.decline_reason) == (
        GatewayStatus.REFUND_FAILED, "declined", None)
    assert gateway.lookup_refund(payment_id="pay_rd", gateway_reference=reference,
                                 refund_id="7261234567890123999") == RefundSnapshot(
        refund_id="7261234567890123999", operation_reference=result.operation_reference,
        status=GatewayStatus.REFUND_FAILED, amount_minor=400, currency=CURRENCY, failure_reason="declined")
    found = snapshot(gateway, "pay_rd")
    assert (found.status, found.refunded_minor) == (GatewayStatus.CAPTURED, 0)
    # The decline is the refund's answer, replayed under its key.
    again = gateway.refund(payment_id="pay_rd", gateway_reference=reference, amount_minor=400, currency=CURRENCY,
                           refund_id="7261234567890123999")
    assert (again.status, again.replayed) == (GatewayStatus.REFUND_FAILED, True)


def test_a_refund_id_that_is_not_a_decimal_id_is_refused_before_sending(gateway: SandboxGateway) -> None:
    for bad in ("", "r1", "1:2", "12345678901234567890"):
        with pytest.raises(ValueError, match="refund_id"):
            gateway.refund(payment_id="pay_x", gateway_reference="sbx_pay_0", amount_minor=1, currency=CURRENCY,
                           refund_id=bad)


def test_operations_on_an_unknown_payment_are_rejected(gateway: SandboxGateway) -> None:
    for call in (
        lambda: gateway.capture(payment_id="nope", gateway_reference="sbx_pay_0", amount_minor=1, currency=CURRENCY),
        lambda: gateway.cancel(payment_id="nope", gateway_reference="sbx_pay_0"),
        lambda: gateway.refund(payment_id="nope", gateway_reference="sbx_pay_0", amount_minor=1, currency=CURRENCY),
    ):
        with pytest.raises(GatewayRejected) as rejected:
            call()
        assert (rejected.value.status_code, rejected.value.code) == (404, "payment_not_found")
    assert gateway.lookup(payment_id="nope") is None


def test_a_wrong_gateway_reference_is_rejected(gateway: SandboxGateway, sandbox_admin: httpx.Client) -> None:
    authorize(gateway, "pay_w1")
    other = authorize(gateway, "pay_w2")
    with pytest.raises(GatewayRejected) as rejected:
        gateway.capture(
            payment_id="pay_w1", gateway_reference=other.gateway_reference, amount_minor=AMOUNT, currency=CURRENCY
        )
    assert (rejected.value.status_code, rejected.value.code) == (400, "reference_mismatch")
    assert committed(sandbox_admin, "pay_w1", Operation.CAPTURE) == []
    assert committed(sandbox_admin, "pay_w2", Operation.CAPTURE) == []


def test_an_unknown_card_token_is_rejected(gateway: SandboxGateway) -> None:
    with pytest.raises(GatewayRejected) as rejected:
        authorize(gateway, "pay_t", "tok_nonsense")
    assert (rejected.value.status_code, rejected.value.code) == (400, "invalid_request")


def test_missing_idempotency_key_is_a_400(sandbox_admin: httpx.Client) -> None:
    body = {"payment_id": "pay_m", "amount_minor": AMOUNT, "currency": CURRENCY, "card_token": "tok_approve"}
    response = sandbox_admin.post("/v1/payments", json=body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "missing_idempotency_key"


@pytest.mark.parametrize(
    ("token", "outcome", "captured_minor"),
    [("tok_async_capture", GatewayStatus.CAPTURED, 700), ("tok_async_capture_fails", GatewayStatus.CAPTURE_FAILED, 0)],
)
def test_async_capture_is_submitted_then_settled(
    gateway: SandboxGateway, sandbox_admin: httpx.Client, token: str, outcome: GatewayStatus, captured_minor: int
) -> None:
    authorize(gateway, "pay_a", token, amount=1_000)
    result = gateway.capture(
        payment_id="pay_a", gateway_reference=ref(gateway, "pay_a"), amount_minor=700, currency=CURRENCY
    )
    assert (result.status, result.amount_minor) == (GatewayStatus.CAPTURE_SUBMITTED, 700)
    assert snapshot(gateway, "pay_a").status is GatewayStatus.CAPTURE_SUBMITTED
    with pytest.raises(GatewayRejected):
        gateway.refund(
            payment_id="pay_a", gateway_reference=ref(gateway, "pay_a"), amount_minor=700, currency=CURRENCY
        )  # nothing captured yet
    settled = sandbox_admin.post("/_sandbox/settle", params={"payment_id": "pay_a"})
    assert settled.status_code == 200
    assert settled.json()["status"] == outcome.value
    found = snapshot(gateway, "pay_a")
    assert (found.status, found.captured_minor) == (outcome, captured_minor)
    # The capture's own answer stays what it was (an acknowledgement), as Adyen's "received" does.
    assert gateway.capture(
        payment_id="pay_a", gateway_reference=ref(gateway, "pay_a"), amount_minor=700, currency=CURRENCY
    ).status is (GatewayStatus.CAPTURE_SUBMITTED)
    assert sandbox_admin.post("/_sandbox/settle", params={"payment_id": "pay_a"}).status_code == 409


def test_settle_can_force_either_outcome(gateway: SandboxGateway, sandbox_admin: httpx.Client) -> None:
    authorize(gateway, "pay_f", "tok_async_capture")
    gateway.capture(payment_id="pay_f", gateway_reference=ref(gateway, "pay_f"), amount_minor=AMOUNT, currency=CURRENCY)
    response = sandbox_admin.post("/_sandbox/settle", params={"payment_id": "pay_f", "outcome": "capture_failed"})
    assert response.json()["status"] == "capture_failed"
    assert snapshot(gateway, "pay_f").status is GatewayStatus.CAPTURE_FAILED


def test_async_capture_settles_itself_after_the_configured_delay(
    gateway: SandboxGateway, sandbox_admin: httpx.Client
) -> None:
    sandbox_admin.post("/_sandbox/config", json={"settle_after_ms": 0}).raise_for_status()
    authorize(gateway, "pay_auto", "tok_async_capture")
    assert gateway.capture(
        payment_id="pay_auto", gateway_reference=ref(gateway, "pay_auto"), amount_minor=AMOUNT, currency=CURRENCY
    ).status is (GatewayStatus.CAPTURE_SUBMITTED)
    assert snapshot(gateway, "pay_auto").status is GatewayStatus.CAPTURED


def test_capture_fails_then_the_authorization_can_be_voided(gateway: SandboxGateway) -> None:
    authorize(gateway, "pay_cf", "tok_capture_fails")
    result = gateway.capture(
        payment_id="pay_cf", gateway_reference=ref(gateway, "pay_cf"), amount_minor=AMOUNT, currency=CURRENCY
    )
    assert result.status is GatewayStatus.CAPTURE_FAILED
    assert snapshot(gateway, "pay_cf").captured_minor == 0
    assert gateway.cancel(payment_id="pay_cf", gateway_reference=ref(gateway, "pay_cf")).status is GatewayStatus.VOIDED


def test_call_log_records_every_request_with_its_shape(gateway: SandboxGateway, sandbox_admin: httpx.Client) -> None:
    with pytest.raises(GatewayUnreachable):
        authorize(gateway, "pay_log", "tok_5xx_then_success", amount=500)
    authorize(gateway, "pay_log", "tok_5xx_then_success", amount=500)
    authorize(gateway, "pay_log", "tok_5xx_then_success", amount=500)
    with pytest.raises(GatewayUnreachable):
        gateway.capture(
            payment_id="pay_log", gateway_reference=ref(gateway, "pay_log"), amount_minor=500, currency=CURRENCY
        )
    gateway.capture(
        payment_id="pay_log", gateway_reference=ref(gateway, "pay_log"), amount_minor=500, currency=CURRENCY
    )
    authorize(gateway, "other")
    log = calls(sandbox_admin, "pay_log")
    assert [(c["operation"], c["idempotency_key"], c["http_status"], c["replayed"], c["committed"]) for c in log] == [
        ("authorize", "pay_log", 503, False, False),
        ("authorize", "pay_log", 200, False, True),
        ("authorize", "pay_log", 200, True, False),
        ("capture", "pay_log:capture", 503, False, False),
        ("capture", "pay_log:capture", 200, False, True),
    ]
    assert all(c["payment_id"] == "pay_log" and c["amount_minor"] == 500 for c in log)
    seqs = [c["seq"] for c in log]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert all(isinstance(c["at_ms"], int) for c in log)
    everything = sandbox_admin.get("/_sandbox/calls").json()["calls"]
    assert {c["payment_id"] for c in everything} == {"pay_log", "other"}
    assert sandbox_admin.post("/_sandbox/reset").status_code == 200
    assert calls(sandbox_admin, "pay_log") == []


def test_an_unreachable_gateway_is_unavailable() -> None:
    with SandboxGateway(base_url=f"http://127.0.0.1:{free_port()}", timeout_ms=500) as nowhere:
        with pytest.raises(GatewayUnreachable) as unavailable:
            authorize(nowhere, "pay_u")
        assert unavailable.value.operation is Operation.AUTHORIZE
        with pytest.raises(GatewayUnreachable):
            nowhere.lookup(payment_id="pay_u")


def test_concurrent_requests_with_one_key_authorize_once(gateway: SandboxGateway, sandbox_admin: httpx.Client) -> None:
    """Ten executions racing on one payment (the fence failed or expired): the key is the second net."""
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(lambda _: authorize(gateway, "pay_c", "tok_slow"), range(10)))
    assert {r.gateway_reference for r in results} == {results[0].gateway_reference}
    assert sum(not r.replayed for r in results) == 1
    assert len(committed(sandbox_admin, "pay_c", Operation.AUTHORIZE)) == 1


def test_a_saga_retrying_through_every_fault_authorizes_once_and_captures_once(
    gateway: SandboxGateway, sandbox_admin: httpx.Client
) -> None:
    """What the saga steps will do: retry transient failures, resolve unknown outcomes by lookup."""
    for token in ("tok_timeout_before_send", "tok_timeout_after_commit", "tok_5xx_then_success"):
        payment_id = f"pay_{token}"
        outcomes = []
        for _ in range(3):  # bounded retries, as the workflow's Retry
            try:
                outcomes.append(authorize(gateway, payment_id, token).status)
                break
            except GatewayUnreachable:
                outcomes.append("unavailable")
            except GatewayOutcomeUnknown:
                found = gateway.lookup(payment_id=payment_id)
                outcomes.append("unknown" if found is None else found.status)
                if found is not None:
                    break
        assert outcomes[-1] is GatewayStatus.AUTHORIZED, (token, outcomes)
        for _ in range(3):
            try:
                gateway.capture(
                    payment_id=payment_id,
                    gateway_reference=ref(gateway, payment_id),
                    amount_minor=AMOUNT,
                    currency=CURRENCY,
                )
                break
            except (GatewayUnreachable, GatewayOutcomeUnknown):
                continue
        assert snapshot(gateway, payment_id).status is GatewayStatus.CAPTURED
        assert len(committed(sandbox_admin, payment_id, Operation.AUTHORIZE)) == 1
        assert len(committed(sandbox_admin, payment_id, Operation.CAPTURE)) == 1
