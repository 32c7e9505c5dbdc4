"""The port's side of several partial refunds per payment, without a server: the refund's idempotency key, what a
refund id may be, and how each gateway's refund webhook names one refund (its operation_reference)."""

from __future__ import annotations

from typing import Any

import pytest

from local.adyen.notifications import notification_item
from steps.gateway import Operation, idempotency_key
from steps.gateway.adyen import _about, _notice
from steps.gateway.notices import NoticeKind
from steps.gateway.stripe import _notice as stripe_notice


def test_a_refund_with_a_refund_id_has_its_own_key_and_without_one_the_saga_key_stays() -> None:
    assert idempotency_key(Operation.REFUND, "123") == "123:refund"
    assert idempotency_key(Operation.REFUND, "123", "7261234567890123456") == "123:refund:7261234567890123456"
    assert idempotency_key(Operation.REFUND, "123", "1") != idempotency_key(Operation.REFUND, "123", "2")


@pytest.mark.parametrize("refund_id", ["", "r1", "1:2", "-1", "12345678901234567890", "١٢"])
def test_a_refund_id_is_a_decimal_snowflake(refund_id: str) -> None:
    with pytest.raises(ValueError, match="refund_id"):
        idempotency_key(Operation.REFUND, "123", refund_id)


def test_only_a_refund_takes_a_refund_id() -> None:
    with pytest.raises(ValueError, match="capture"):
        idempotency_key(Operation.CAPTURE, "123", "1")


def _stripe_event(event_type: str, refund: dict[str, Any]) -> dict[str, Any]:
    return {"id": "evt_1", "object": "event", "type": event_type, "created": 1_700_000_000,
            "data": {"object": refund}}


def _stripe_refund(status: str, **extra: Any) -> dict[str, Any]:
    return {"id": "re_1", "object": "refund", "amount": 300, "currency": "eur", "payment_intent": "pi_1",
            "status": status, "metadata": {"payment_id": "123", "refund_id": "77"}, **extra}


@pytest.mark.parametrize(
    ("event_type", "refund", "kind"),
    [
        # A pending refund that went through: not a notice the saga acts on, but it names the one refund.
        ("refund.updated", _stripe_refund("succeeded"), NoticeKind.OTHER),
        ("refund.updated", _stripe_refund("failed", failure_reason="lost_or_stolen_card"), NoticeKind.REFUND_FAILED),
        ("refund.failed", _stripe_refund("failed", failure_reason="lost_or_stolen_card"), NoticeKind.REFUND_FAILED),
        ("refund.updated", _stripe_refund("pending"), NoticeKind.OTHER),
    ],
)
def test_a_stripe_refund_event_names_one_refund(event_type: str, refund: dict[str, Any], kind: NoticeKind) -> None:
    notice = stripe_notice(_stripe_event(event_type, refund))
    assert (notice.kind, notice.operation_reference, notice.payment_id, notice.gateway_reference) == (
        kind, "re_1", "123", "pi_1")
    if kind is not NoticeKind.OTHER:
        assert (notice.amount_minor, notice.currency) == (300, "EUR")
    if kind is NoticeKind.REFUND_FAILED:
        assert notice.reason == "lost_or_stolen_card"


def test_an_adyen_refund_made_under_its_refund_id_is_the_payments_by_original_reference() -> None:
    def item(event_code: str, psp: str, reference: str, original: str | None, at_ms: int) -> Any:
        return _notice(notification_item(event_code=event_code, psp_reference=psp, merchant_reference=reference,
                                         merchant_account="M", amount_minor=300, currency="EUR", success=True,
                                         at_ms=at_ms, original_reference=original))

    authorisation = item("AUTHORISATION", "PSPPAY", "123", None, 1_000)
    refund = item("REFUND", "PSPREF1", "77", "PSPPAY", 3_000)
    other_payments_refund = item("REFUND", "PSPREF2", "78", "PSPOTHER", 4_000)
    assert (refund.kind, refund.operation_reference, refund.payment_id, refund.gateway_reference) == (
        NoticeKind.REFUNDED, "PSPREF1", "77", "PSPPAY")
    notices = [authorisation, refund, other_payments_refund]
    assert _about(notices, "123", None) == [authorisation, refund]
    assert _about(notices, "123", "PSPPAY") == [authorisation, refund]
