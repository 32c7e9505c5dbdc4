"""Every step and every compensation, run twice in a row, gives the same result and one effect (DESIGN 12.3).
The handlers are called directly, as Lambda would on a duplicate delivery, against the live stack's backends."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from core.aws import LambdaHandler
from local.testing.live import LiveStack
from steps import authorize, capture, commit, notify, park, reserve, validate
from tests.e2e.saga_support import authorizations, captures, ledger_kinds, new_payment, outbox, payment_row


def twice(handler: LambdaHandler, event: dict[str, Any]) -> dict[str, Any]:
    first: dict[str, Any] = handler(dict(event), None)
    second = handler(dict(event), None)
    drop = {"replayed", "reasons"}  # says whether this run acted; the effect itself must be the same
    assert {k: v for k, v in first.items() if k not in drop} == {k: v for k, v in second.items() if k not in drop}
    return first


def status_of(live: LiveStack, event: dict[str, Any]) -> str:
    return str(payment_row(live, event["payment_id"])["status"])


def test_forward_steps_twice_each_leave_one_effect(live: LiveStack, step_env: None) -> None:
    event = new_payment(live)
    pid = event["payment_id"]

    assert twice(validate.handler, event)["decision"] == "accept"
    assert status_of(live, event) == "validated"

    twice(reserve.handler, event)
    assert ledger_kinds(live, pid) == ["reserve"]

    twice(authorize.handler, event)
    assert authorizations(live.gateway_calls(pid)) == 1 and status_of(live, event) == "authorized"

    assert twice(capture.handler, event)["captured_amount_minor"] == 1234
    assert captures(live.gateway_calls(pid)) == 1 and status_of(live, event) == "captured"

    twice(commit.handler, event)
    assert ledger_kinds(live, pid) == ["reserve", "post"] and len(outbox(live, pid)) == 1

    twice(notify.handler, event)
    assert status_of(live, event) == "succeeded"
    assert len(live.notifications(pid)) == 1  # published once (SQS drops the second send: same deduplication id)

    twice(notify.park_notification, event)  # after success: changes nothing
    assert status_of(live, event) == "succeeded"
    with live.engine.connect() as conn:
        versions = conn.execute(text("SELECT version FROM payments WHERE id = :id"), {"id": int(pid)}).scalar_one()
    assert versions == 6  # created -> validated -> reserved -> authorized -> captured -> committed -> succeeded


def test_compensations_twice_each_leave_one_effect(live: LiveStack, step_env: None) -> None:
    event = new_payment(live)
    pid = event["payment_id"]
    validate.handler(dict(event), None)
    reserve.handler(dict(event), None)
    authorize.handler(dict(event), None)

    first = authorize.void_authorization(dict(event), None)
    second = authorize.void_authorization(dict(event), None)
    assert first == {"outcome": "voided"} and second == {"outcome": "nothing_to_void"}  # one void, then a no-op
    voids = [c for c in live.gateway_calls(pid) if c["operation"] == "void" and c["committed"]]
    assert len(voids) == 1 and status_of(live, event) == "voided"

    twice(reserve.release_reservation, event)
    assert ledger_kinds(live, pid) == ["reserve", "void"] and status_of(live, event) == "released"

    failed = {**event, "error": {"Error": "PaymentDeclined", "Cause": '{"errorMessage": "declined"}'}}
    assert twice(validate.reject_payment, failed) == {"error": "PaymentDeclined", "cause": "declined"}
    row = payment_row(live, pid)
    assert row["status"] == "failed" and row["failure_code"] == "PaymentDeclined"


def test_post_pivot_compensations_twice_each_leave_one_effect(live: LiveStack, step_env: None) -> None:
    event = new_payment(live)
    pid = event["payment_id"]
    for handler in (validate.handler, reserve.handler, authorize.handler, capture.handler, commit.handler):
        handler(dict(event), None)

    twice(commit.reverse_ledger, event)
    assert ledger_kinds(live, pid) == ["reserve", "post", "reverse"]

    twice(capture.refund_capture, event)
    refunds = [c for c in live.gateway_calls(pid) if c["operation"] == "refund" and c["committed"]]
    assert len(refunds) == 1 and status_of(live, event) == "refunded"


def test_park_twice_parks_once_and_a_compensation_where_nothing_happened_is_a_no_op(
    live: LiveStack, step_env: None
) -> None:
    event = new_payment(live)
    pid = event["payment_id"]
    # Nothing took effect yet: every compensation is a no-op.
    assert twice(authorize.void_authorization, event) == {"outcome": "nothing_to_void"}
    assert twice(reserve.release_reservation, event)["released"] is False
    assert twice(capture.refund_capture, event) == {"outcome": "nothing_captured"}
    assert twice(commit.reverse_ledger, event)["reversed"] is False
    assert ledger_kinds(live, pid) == [] and live.gateway_calls(pid) == []
    assert status_of(live, event) == "created"

    parked = {**event, "error": {"Error": "TransientError", "Cause": "{}"}}
    twice(park.handler, parked)
    row = payment_row(live, pid)
    assert row["status"] == "needs_attention" and row["failure_code"] == "TransientError" and row["version"] == 1
