"""Every path of the saga through POST /v1/payments on the local stack, against each gateway (the sandbox, Stripe
through localstripe, Adyen through the local Adyen server that validates every request against Adyen's spec). After
each: the payment's final status, the gateway's own record of calls, the ledger, the outbox and the SQS queue.

A path a gateway cannot take is not parametrized for it: Stripe's capture is final at once, so the asynchronous and
refused captures run against the sandbox and Adyen only."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from local.gateway_tokens import TOKENS, Scenario
from local.testing.live import LiveStack
from steps.commit import fee_minor
from tests.e2e.saga_support import (
    authorizations,
    books_balance,
    captures,
    ledger_kinds,
    outbox,
    pay,
    payment_row,
)

ALL = ("sandbox", "stripe", "adyen")


def _able(scenario: Scenario) -> list[str]:
    return [gateway for gateway in ALL if scenario in TOKENS[gateway]]


def _merchant(live: LiveStack, gateway: str, **limits: object) -> str:
    _, api_key = live.new_merchant(gateway=gateway, **limits)  # type: ignore[arg-type]
    return api_key


@pytest.mark.parametrize("gateway", ALL)
def test_success_captures_once_posts_balanced_entries_and_notifies(live: LiveStack, gateway: str) -> None:
    api_key = _merchant(live, gateway)
    response = pay(live, api_key, amount_minor=2500, token=TOKENS[gateway][Scenario.APPROVE])
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "succeeded" and body["captured_amount_minor"] == 2500
    row = payment_row(live, body["id"])
    assert row["status"] == "succeeded" and row["gateway_reference"] == body["gateway_reference"]
    assert row["gateway"] == gateway

    calls = live.gateway_calls(body["id"], gateway)
    assert authorizations(calls) == 1 and captures(calls) == 1
    assert {c["idempotency_key"] for c in calls} == {body["id"], f"{body['id']}:capture"}

    assert ledger_kinds(live, body["id"]) == ["reserve", "post"]
    debits, credits, stranded = books_balance(live, body["id"])
    assert debits == credits and stranded == 0

    events = outbox(live, body["id"])
    assert [e["event_type"] for e in events] == ["payment.succeeded"] and events[0]["sent_at"] is not None
    # The notification worker fanned the event out; the tests' queue on the SNS topic got it once, in its one form.
    messages = live.notifications(body["id"])
    assert len(messages) == 1 and messages[0]["type"] == "payment.succeeded"
    assert messages[0]["data"]["captured_amount_minor"] == 2500


def assert_fully_compensated(live: LiveStack, payment_id: str, gateway: str = "sandbox") -> None:
    """Nothing charged, nothing held, nothing announced but the failure itself, and the books balance."""
    kinds = ledger_kinds(live, payment_id)
    assert kinds in ([], ["reserve", "void"]), kinds
    at_gateway = live.gateway_snapshot(payment_id, gateway)  # the gateway's own truth: nothing charged or held
    if at_gateway is not None:
        assert at_gateway["status"] != "authorized", at_gateway
        assert at_gateway["captured_minor"] - at_gateway["refunded_minor"] == 0, at_gateway
    assert [e["event_type"] for e in outbox(live, payment_id)] == ["payment.failed"]
    debits, credits, stranded = books_balance(live, payment_id)
    assert debits == credits and stranded == 0


@pytest.mark.parametrize("gateway", ALL)
def test_decline_at_authorization_releases_the_reservation(live: LiveStack, gateway: str) -> None:
    api_key = _merchant(live, gateway)
    response = pay(live, api_key, token=TOKENS[gateway][Scenario.DECLINE])
    assert response.status_code == 402, response.text
    body = response.json()
    assert body["error"]["type"] == "PaymentDeclined"
    payment_id = body["payment"]["id"]
    assert payment_row(live, payment_id)["status"] == "failed"
    assert ledger_kinds(live, payment_id) == ["reserve", "void"]
    assert authorizations(live.gateway_calls(payment_id, gateway)) <= 1
    assert_fully_compensated(live, payment_id, gateway)
    with live.engine.connect() as conn:  # announced with its business error; a decline is the card's: not retryable
        payload = conn.execute(text("SELECT payload FROM outbox WHERE payment_id = :id"),
                               {"id": int(payment_id)}).scalar_one()
    assert (payload["error"], payload["retryable"], payload["status"]) == ("PaymentDeclined", False, "failed")
    assert payload["captured_amount_minor"] is None and payload["payment_id"] == payment_id


@pytest.mark.parametrize("gateway", ALL)
def test_insufficient_funds_is_its_own_outcome(live: LiveStack, gateway: str) -> None:
    api_key = _merchant(live, gateway)
    response = pay(live, api_key, token=TOKENS[gateway][Scenario.INSUFFICIENT_FUNDS])
    assert response.status_code == 402
    assert response.json()["error"]["type"] == "InsufficientFunds"
    assert_fully_compensated(live, response.json()["payment"]["id"], gateway)


@pytest.mark.parametrize("gateway", ALL)
def test_a_fraudulent_card_is_declined(live: LiveStack, gateway: str) -> None:
    api_key = _merchant(live, gateway)
    response = pay(live, api_key, token=TOKENS[gateway][Scenario.FRAUDULENT])
    assert response.status_code == 402
    assert response.json()["error"]["type"] == "PaymentDeclined"
    assert "fraud" in response.json()["error"]["message"].lower()
    assert_fully_compensated(live, response.json()["payment"]["id"], gateway)


def test_validation_rejects_before_anything_is_held(live: LiveStack) -> None:
    _, api_key = live.new_merchant(currencies=("EUR",), max_amount_minor=10_000)
    wrong_currency = pay(live, api_key, currency="USD")
    too_much = pay(live, api_key, amount_minor=10_001)
    for response, error in ((wrong_currency, "CurrencyNotSupported"), (too_much, "AmountAboveLimit")):
        assert response.status_code == 402, response.text
        assert response.json()["error"]["type"] == error
        payment_id = response.json()["payment"]["id"]
        assert payment_row(live, payment_id)["status"] == "rejected"
        assert ledger_kinds(live, payment_id) == []
        assert live.gateway_calls(payment_id) == []
        assert_fully_compensated(live, payment_id)


@pytest.mark.parametrize("gateway", _able(Scenario.EXPIRED_CARD))
def test_an_expired_card_is_declined(live: LiveStack, gateway: str) -> None:
    api_key = _merchant(live, gateway)
    response = pay(live, api_key, token=TOKENS[gateway][Scenario.EXPIRED_CARD])
    assert response.status_code == 402, response.text
    assert response.json()["error"]["type"] == "PaymentDeclined"
    assert "expired" in response.json()["error"]["message"].lower()
    assert_fully_compensated(live, response.json()["payment"]["id"], gateway)


@pytest.mark.parametrize("gateway", _able(Scenario.CAPTURE_FAILS))
def test_capture_refused_voids_the_authorization_and_releases(live: LiveStack, gateway: str) -> None:
    api_key = _merchant(live, gateway)
    response = pay(live, api_key, token=TOKENS[gateway][Scenario.CAPTURE_FAILS])
    assert response.status_code == 402, response.text
    assert response.json()["error"]["type"] == "CaptureFailed"
    payment_id = response.json()["payment"]["id"]
    calls = live.gateway_calls(payment_id, gateway)
    assert authorizations(calls) == 1
    assert [c["operation"] for c in calls if c["committed"]][-1] == "void"
    assert_fully_compensated(live, payment_id, gateway)


@pytest.mark.parametrize("gateway", ALL)
def test_fraud_review_then_reject_from_the_payment_history(live: LiveStack, gateway: str) -> None:
    """Card testing: many small payments with one token from one customer. The 5th is held for review (nothing
    captured), the 6th rejected outright (see steps/fraud.py for the points)."""
    api_key = _merchant(live, gateway)
    customer = f"cus_card_tester_{gateway}"
    approve = TOKENS[gateway][Scenario.APPROVE]
    answers = [pay(live, api_key, amount_minor=199, customer=customer, token=approve) for _ in range(6)]
    assert [a.status_code for a in answers[:4]] == [201, 201, 201, 201], [a.text for a in answers]

    review = answers[4]
    assert review.status_code == 202, review.text
    assert review.json()["status"] == "review"
    review_id = review.json()["id"]
    calls = live.gateway_calls(review_id, gateway)
    assert authorizations(calls) == 1 and captures(calls) == 0
    assert ledger_kinds(live, review_id) == ["reserve", "void"]
    assert [e["event_type"] for e in outbox(live, review_id)] == ["payment.review"]

    rejected = answers[5]
    assert rejected.status_code == 402, rejected.text
    assert rejected.json()["error"]["type"] == "FraudRejected"
    rejected_id = rejected.json()["payment"]["id"]
    assert payment_row(live, rejected_id)["status"] == "rejected"
    assert live.gateway_calls(rejected_id, gateway) == []
    assert_fully_compensated(live, rejected_id, gateway)


@pytest.mark.parametrize("gateway", ALL)
def test_gateway_timeout_after_it_committed_is_resolved_without_a_second_authorization(
        live: LiveStack, gateway: str) -> None:
    api_key = _merchant(live, gateway)
    response = pay(live, api_key, token=TOKENS[gateway][Scenario.TIMEOUT_AFTER_COMMIT])
    assert response.status_code == 201, response.text
    payment_id = response.json()["id"]
    calls = live.gateway_calls(payment_id, gateway)
    assert authorizations(calls) == 1, calls
    assert captures(calls) == 1, calls
    assert any(c["outcome"] == "answer_withheld" for c in calls)


@pytest.mark.parametrize("gateway", ALL)
def test_gateway_5xx_then_success_retries_with_the_same_key(live: LiveStack, gateway: str) -> None:
    api_key = _merchant(live, gateway)
    response = pay(live, api_key, token=TOKENS[gateway][Scenario.UNAVAILABLE_FIRST])
    assert response.status_code == 201, response.text
    payment_id = response.json()["id"]
    calls = [c for c in live.gateway_calls(payment_id, gateway) if c["operation"] == "authorize"]
    assert len(calls) >= 2 and not calls[0]["committed"] and authorizations(calls) == 1
    assert {c["idempotency_key"] for c in calls} == {payment_id}


@pytest.mark.parametrize("gateway", _able(Scenario.ASYNC_CAPTURE))
def test_asynchronous_capture_is_confirmed_before_the_ledger_posts(live: LiveStack, gateway: str) -> None:
    api_key = _merchant(live, gateway)
    response = pay(live, api_key, token=TOKENS[gateway][Scenario.ASYNC_CAPTURE])
    assert response.status_code == 201, response.text
    payment_id = response.json()["id"]
    assert captures(live.gateway_calls(payment_id, gateway)) == 1
    assert ledger_kinds(live, payment_id) == ["reserve", "post"]


@pytest.mark.parametrize("gateway", _able(Scenario.ASYNC_CAPTURE_FAILS))
def test_asynchronous_capture_refused_later_voids_and_releases(live: LiveStack, gateway: str) -> None:
    api_key = _merchant(live, gateway)
    response = pay(live, api_key, token=TOKENS[gateway][Scenario.ASYNC_CAPTURE_FAILS])
    assert response.status_code == 402, response.text
    assert response.json()["error"]["type"] == "CaptureFailed"
    assert_fully_compensated(live, response.json()["payment"]["id"], gateway)


@pytest.mark.parametrize("gateway", ALL)
def test_partial_capture_releases_the_rest(live: LiveStack, gateway: str) -> None:
    api_key = _merchant(live, gateway)
    response = pay(live, api_key, amount_minor=5000, capture_amount_minor=3000,
                   token=TOKENS[gateway][Scenario.APPROVE])
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["amount_minor"] == 5000 and body["captured_amount_minor"] == 3000
    with live.engine.connect() as conn:
        from sqlalchemy import text

        rows = conn.execute(text(
            "SELECT t.kind, e.side, e.effect, e.amount_minor FROM ledger_entries e"
            " JOIN ledger_transactions t ON t.id = e.transaction_id WHERE t.payment_id = :id"),
            {"id": int(body["id"])}).all()
    posted = sum(r.amount_minor for r in rows if r.effect == "post" and r.side == "debit"
                 and r.kind == "post")
    released = sum(r.amount_minor for r in rows if r.effect == "release" and r.side == "debit")
    assert released == 5000  # the whole reservation is released, and 3000 of it posted with the fee
    assert posted == 3000 + fee_minor(3000, "EUR")
