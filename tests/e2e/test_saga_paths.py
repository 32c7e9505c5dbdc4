"""Every path of the saga through POST /v1/payments on the local stack. After each: the payment's final status, the
gateway's own record of calls, the ledger, the outbox and the SQS queue."""

from __future__ import annotations

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


def test_success_captures_once_posts_balanced_entries_and_notifies(live: LiveStack) -> None:
    _, api_key = live.new_merchant()
    response = pay(live, api_key, amount_minor=2500)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "succeeded" and body["captured_amount_minor"] == 2500
    row = payment_row(live, body["id"])
    assert row["status"] == "succeeded" and row["gateway_reference"] == body["gateway_reference"]

    calls = live.gateway_calls(body["id"])
    assert authorizations(calls) == 1 and captures(calls) == 1
    assert {c["idempotency_key"] for c in calls} == {body["id"], f"{body['id']}:capture"}

    assert ledger_kinds(live, body["id"]) == ["reserve", "post"]
    debits, credits, stranded = books_balance(live, body["id"])
    assert debits == credits and stranded == 0

    events = outbox(live, body["id"])
    assert [e["event_type"] for e in events] == ["payment.succeeded"] and events[0]["sent_at"] is not None
    messages = [m for m in live.queue_messages() if m["payment_id"] == body["id"]]
    assert len(messages) == 1 and messages[0]["type"] == "payment.succeeded"
    assert messages[0]["captured_amount_minor"] == 2500


def assert_fully_compensated(live: LiveStack, payment_id: str) -> None:
    """Nothing charged, nothing held, nothing announced, and the books balance."""
    kinds = ledger_kinds(live, payment_id)
    assert kinds in ([], ["reserve", "void"]), kinds
    calls = live.gateway_calls(payment_id)
    assert captures(calls) == 0
    assert outbox(live, payment_id) == []
    debits, credits, stranded = books_balance(live, payment_id)
    assert debits == credits and stranded == 0


def test_decline_at_authorization_releases_the_reservation(live: LiveStack) -> None:
    _, api_key = live.new_merchant()
    response = pay(live, api_key, token="tok_decline")
    assert response.status_code == 402, response.text
    body = response.json()
    assert body["error"]["type"] == "PaymentDeclined"
    payment_id = body["payment"]["id"]
    assert payment_row(live, payment_id)["status"] == "failed"
    assert ledger_kinds(live, payment_id) == ["reserve", "void"]
    assert authorizations(live.gateway_calls(payment_id)) <= 1
    assert_fully_compensated(live, payment_id)


def test_insufficient_funds_is_its_own_outcome(live: LiveStack) -> None:
    _, api_key = live.new_merchant()
    response = pay(live, api_key, token="tok_insufficient_funds")
    assert response.status_code == 402
    assert response.json()["error"]["type"] == "InsufficientFunds"
    assert_fully_compensated(live, response.json()["payment"]["id"])


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


def test_capture_refused_voids_the_authorization_and_releases(live: LiveStack) -> None:
    _, api_key = live.new_merchant()
    response = pay(live, api_key, token="tok_capture_fails")
    assert response.status_code == 402, response.text
    assert response.json()["error"]["type"] == "CaptureFailed"
    payment_id = response.json()["payment"]["id"]
    calls = live.gateway_calls(payment_id)
    assert authorizations(calls) == 1
    assert [c["operation"] for c in calls if c["committed"]][-1] == "void"
    assert_fully_compensated(live, payment_id)


def test_fraud_review_then_reject_from_the_payment_history(live: LiveStack) -> None:
    """Card testing: many small payments with one token from one customer. The 5th is held for review (nothing
    captured), the 6th rejected outright (see steps/fraud.py for the points)."""
    _, api_key = live.new_merchant()
    customer = "cus_card_tester"
    answers = [pay(live, api_key, amount_minor=199, customer=customer, token="tok_approve") for _ in range(6)]
    assert [a.status_code for a in answers[:4]] == [201, 201, 201, 201], [a.text for a in answers]

    review = answers[4]
    assert review.status_code == 202, review.text
    assert review.json()["status"] == "review"
    review_id = review.json()["id"]
    calls = live.gateway_calls(review_id)
    assert authorizations(calls) == 1 and captures(calls) == 0
    assert ledger_kinds(live, review_id) == ["reserve", "void"]
    assert [e["event_type"] for e in outbox(live, review_id)] == ["payment.review"]

    rejected = answers[5]
    assert rejected.status_code == 402, rejected.text
    assert rejected.json()["error"]["type"] == "FraudRejected"
    rejected_id = rejected.json()["payment"]["id"]
    assert payment_row(live, rejected_id)["status"] == "rejected"
    assert live.gateway_calls(rejected_id) == []
    assert_fully_compensated(live, rejected_id)


def test_gateway_timeout_after_it_committed_is_resolved_without_a_second_authorization(live: LiveStack) -> None:
    _, api_key = live.new_merchant()
    response = pay(live, api_key, token="tok_timeout_after_commit")
    assert response.status_code == 201, response.text
    payment_id = response.json()["id"]
    calls = live.gateway_calls(payment_id)
    assert authorizations(calls) == 1, calls
    assert captures(calls) == 1, calls
    assert any(c["outcome"] == "answer_withheld" for c in calls)


def test_gateway_5xx_then_success_retries_with_the_same_key(live: LiveStack) -> None:
    _, api_key = live.new_merchant()
    response = pay(live, api_key, token="tok_5xx_then_success")
    assert response.status_code == 201, response.text
    payment_id = response.json()["id"]
    calls = [c for c in live.gateway_calls(payment_id) if c["operation"] == "authorize"]
    assert len(calls) >= 2 and not calls[0]["committed"] and authorizations(calls) == 1
    assert {c["idempotency_key"] for c in calls} == {payment_id}


def test_asynchronous_capture_is_confirmed_before_the_ledger_posts(live: LiveStack) -> None:
    _, api_key = live.new_merchant()
    response = pay(live, api_key, token="tok_async_capture")
    assert response.status_code == 201, response.text
    payment_id = response.json()["id"]
    assert captures(live.gateway_calls(payment_id)) == 1
    assert ledger_kinds(live, payment_id) == ["reserve", "post"]


def test_partial_capture_releases_the_rest(live: LiveStack) -> None:
    _, api_key = live.new_merchant()
    response = pay(live, api_key, amount_minor=5000, capture_amount_minor=3000)
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
