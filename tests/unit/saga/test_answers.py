"""The start endpoint answers from the payment's recorded state, never from an execution's error: POST and GET agree
with the money, and a payment the gateway may have captured is never answered as failed."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest

from saga.api.answers import payment_answer
from store import lifecycle
from store.payments import Payment


def _payment(status: str, *, captured: int | None = None, failure: str | None = None) -> Payment:
    now = datetime.now(UTC)
    return Payment(id=1, merchant_id="mer_1", amount_minor=761, currency="EUR", captured_amount_minor=captured,
                   capture_mode="automatic", status=status, version=3, gateway="sandbox", gateway_reference="g",
                   customer_ref=None, order_ref=None, payment_method_token="tok", metadata={}, fraud_score=0,
                   failure_code=failure, failure_message=None, lease_token=1, refund_reserved_minor=0,
                   lease_holder=None, lease_expires_at=None, created_at=now, updated_at=now)


@pytest.mark.parametrize("status", lifecycle.PAYMENT_STATUSES)
def test_every_status_has_one_answer_that_agrees_with_the_money(status: str) -> None:
    captured = 761 if status in lifecycle.HOLDS_CAPTURE else None
    answer = payment_answer(_payment(status, captured=captured, failure="PaymentDeclined"))
    if status in ("succeeded", "canceled"):  # canceled: a manual-capture checkout that succeeded, then was cancelled
        assert answer is not None and answer.status_code == 201
    elif status in ("review", "needs_attention"):
        assert answer is not None and answer.status_code == 202
    elif status in lifecycle.FAILED:
        assert answer is not None and answer.status_code == 402
        assert json.loads(answer.body)["error"]["type"] == "PaymentDeclined"
    else:  # still moving: no answer is final yet (the start answers 503 and the retry resumes it)
        assert answer is None
    if answer is not None and status in lifecycle.PAST_PIVOT - {"refunded"}:
        assert answer.status_code != 402, f"{status} (the gateway may have captured) answered as failed"
    if answer is not None:
        shown = json.loads(answer.body)
        assert (shown.get("payment") or shown)["status"] == status


def test_a_manual_capture_checkout_answers_201_once_authorized() -> None:
    held = dataclasses.replace(_payment("authorized"), capture_mode="manual")
    answer = payment_answer(held)
    assert answer is not None and answer.status_code == 201
    assert json.loads(answer.body)["status"] == "authorized"
    assert payment_answer(_payment("authorized")) is None  # automatic: still moving toward its capture
