"""Every path of the saga through POST /v1/payments on the local stack. After each: the payment's final status, the
gateway's own record of calls, the ledger, the outbox and the SQS queue."""

from __future__ import annotations

from tests.e2e.saga_support import (
    authorizations,
    books_balance,
    captures,
    ledger_kinds,
    outbox,
    pay,
    payment_row,
)
from tests.support.live import LiveStack


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
    debits, credits, stranded = books_balance(live)
    assert debits == credits and stranded == 0

    events = outbox(live, body["id"])
    assert [e["event_type"] for e in events] == ["payment.succeeded"] and events[0]["sent_at"] is not None
    messages = [m for m in live.queue_messages() if m["payment_id"] == body["id"]]
    assert len(messages) == 1 and messages[0]["type"] == "payment.succeeded"
    assert messages[0]["captured_amount_minor"] == 2500
