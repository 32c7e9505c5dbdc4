"""One execution per payment at a time (issue: "charged but answered failed"). The step handlers are called
directly, as Lambda would, with the step input of one execution or another, against the live stack's backends:

- an execution that lost its lease to a newer one has no effect, in any step or compensation;
- a compensation that finds the payment past the pivot is a no-op that leaves its real outcome;
- a start or a replay that cannot take the lease runs nothing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import text

from core.settings import settings
from local.saga_runtime import local_services
from local.testing.live import LiveStack
from saga.execution import PaymentBusyError, run_execution
from saga.replay import ReplayError, replay
from steps import authorize, capture, commit, notify, park, reserve, validate
from steps.contract import ExecutionInput
from steps.errors import ExecutionSuperseded
from tests.e2e.saga_support import authorizations, captures, ledger_kinds, new_payment, payment_row, take_over


def _crashed(event: dict[str, Any]) -> dict[str, Any]:
    """The input a Catch gives a compensation: the step's process died."""
    return {**event, "error": {"Error": "Runtime.ExitError", "Cause": "{}"}}


def _operations(live: LiveStack, payment_id: str, operation: str) -> int:
    return len([c for c in live.gateway_calls(payment_id) if c["operation"] == operation])


def test_an_execution_that_lost_its_lease_has_no_effect(live: LiveStack, step_env: None) -> None:
    stale = new_payment(live)
    pid = stale["payment_id"]
    for forward in (validate.handler, reserve.handler, authorize.handler):
        forward(dict(stale), None)
    newer = take_over(live, stale)
    before = payment_row(live, pid)

    # Every step and every compensation of the stale execution ends it without effect.
    for handler, event in ((capture.handler, stale), (commit.handler, stale), (notify.handler, stale),
                           (authorize.void_authorization, _crashed(stale)),
                           (reserve.release_reservation, _crashed(stale)),
                           (capture.refund_capture, _crashed(stale)), (commit.reverse_ledger, _crashed(stale)),
                           (validate.reject_payment, _crashed(stale)), (park.handler, _crashed(stale)),
                           (validate.handler, stale), (reserve.handler, stale)):
        with pytest.raises(ExecutionSuperseded):
            handler(dict(event), None)
    after = payment_row(live, pid)
    assert (after["status"], after["version"]) == (before["status"], before["version"]) == ("authorized",
                                                                                           before["version"])
    assert ledger_kinds(live, pid) == ["reserve"]
    assert _operations(live, pid, "capture") == 0 and _operations(live, pid, "void") == 0

    # The execution that holds the payment finishes it: one authorization, one capture.
    for forward in (capture.handler, commit.handler, notify.handler):
        forward(dict(newer), None)
    assert payment_row(live, pid)["status"] == "succeeded"
    calls = live.gateway_calls(pid)
    assert authorizations(calls) == 1 and captures(calls) == 1


def test_compensations_after_the_pivot_leave_the_payment_as_it_ended(live: LiveStack, step_env: None) -> None:
    event = new_payment(live, amount_minor=761)
    pid = event["payment_id"]
    for forward in (validate.handler, reserve.handler, authorize.handler, capture.handler, commit.handler,
                    notify.handler):
        forward(dict(event), None)
    assert payment_row(live, pid)["status"] == "succeeded"

    # Seed 20261261: a twin's ValidatePayment died and its Catch ran RejectPayment on the succeeded payment.
    with pytest.raises(ExecutionSuperseded):
        validate.reject_payment(_crashed(event), None)
    assert authorize.void_authorization(_crashed(event), None) == {"outcome": "not_voidable_succeeded"}
    assert capture.refund_capture(_crashed(event), None) == {"outcome": "not_refundable_succeeded"}
    assert commit.reverse_ledger(_crashed(event), None) == {"reversed": False, "status": "succeeded"}
    assert reserve.release_reservation(_crashed(event), None)["released"] is False
    assert park.handler(_crashed(event), None) == {"status": "succeeded", "parked": False}

    row = payment_row(live, pid)
    assert (row["status"], row["captured_amount_minor"], row["failure_code"]) == ("succeeded", 761, None)
    assert ledger_kinds(live, pid) == ["reserve", "post"]
    assert _operations(live, pid, "void") == 0 and _operations(live, pid, "refund") == 0


def test_reject_payment_fails_nothing_that_is_still_held(live: LiveStack, step_env: None) -> None:
    event = new_payment(live)
    pid = event["payment_id"]
    for forward in (validate.handler, reserve.handler, authorize.handler):
        forward(dict(event), None)
    # Reserved and authorized: the earlier compensations did not run (or another run is moving it): not failed.
    with pytest.raises(ExecutionSuperseded):
        validate.reject_payment(_crashed(event), None)
    assert payment_row(live, pid)["status"] == "authorized"
    # After the compensations that release what it holds, it is failed, and stays so when asked again.
    for compensation in (authorize.void_authorization, reserve.release_reservation):
        compensation(_crashed(event), None)
    assert validate.reject_payment(_crashed(event), None)["error"] == "ServiceUnavailable"
    assert validate.reject_payment(_crashed(event), None)["error"] == "ServiceUnavailable"
    row = payment_row(live, pid)
    assert row["status"] == "failed" and ledger_kinds(live, pid) == ["reserve", "void"]


def _saga_runs(live: LiveStack, payment_id: int) -> int:
    with live.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM saga_executions WHERE payment_id = :id"),
                                {"id": payment_id}).scalar_one())


def test_a_start_or_replay_that_cannot_take_the_lease_runs_nothing(live: LiveStack, step_env: None) -> None:
    event = new_payment(live)  # an execution holds the payment (its lease lasts a minute)
    payment_id = int(event["payment_id"])
    now = settings()
    services = local_services(now)
    with pytest.raises(PaymentBusyError, match="test-steps"):
        run_execution(services, name=f"pay-{payment_id}-twin",
                      saga_input=ExecutionInput(payment_id, event["merchant_id"]), wait_ms=200)
    assert _saga_runs(live, payment_id) == 0 and live.gateway_calls(event["payment_id"]) == []
    assert payment_row(live, event["payment_id"])["status"] == "created"

    # The execution the replay would repeat is the one running: refused, with who holds the payment.
    with live.engine.begin() as conn:
        conn.execute(text("INSERT INTO saga_executions (execution_arn, payment_id, name, input)"
                          " VALUES ('arn:running', :id, 'test-steps', CAST(:input AS jsonb))"),
                     {"id": payment_id, "input": json.dumps(event)})
    with pytest.raises(ReplayError, match="test-steps"):
        replay(services, "arn:running")
    assert _saga_runs(live, payment_id) == 1 and payment_row(live, event["payment_id"])["status"] == "created"


def test_a_start_over_a_final_payment_answers_from_what_was_recorded(live: LiveStack, step_env: None) -> None:
    event = new_payment(live)
    payment_id = int(event["payment_id"])
    for forward in (validate.handler, reserve.handler, authorize.handler, capture.handler, commit.handler,
                    notify.handler):
        forward(dict(event), None)
    services = local_services(settings())
    # The holder finished but never gave the lease back (its process died): nothing is left to run, so the start
    # answers at once from the record, without waiting out the lease and without an execution.
    run = run_execution(services, name=f"pay-{payment_id}-later",
                        saga_input=ExecutionInput(payment_id, event["merchant_id"]), wait_ms=0)
    assert run.execution_arn is None and run.payment.status == "succeeded"
    assert _saga_runs(live, payment_id) == 0


def test_a_start_waits_for_the_lease_to_lapse_then_runs_the_payment(live: LiveStack, step_env: None) -> None:
    event = new_payment(live)
    payment_id = int(event["payment_id"])
    with live.engine.begin() as conn:  # its holder died before starting anything; its lease ends in 300 ms
        conn.execute(text("UPDATE payments SET lease_expires_at = clock_timestamp() + interval '300 ms'"
                          " WHERE id = :id"), {"id": payment_id})
    services = local_services(settings())
    run = run_execution(services, name=f"pay-{payment_id}-later",
                        saga_input=ExecutionInput(payment_id, event["merchant_id"]), wait_ms=10_000)
    assert run.response is not None and run.response["status"] == "SUCCEEDED", run.response
    assert run.payment.status == "succeeded" and run.payment.lease_token == event["lease_token"] + 1
    assert run.payment.lease_holder is None, "the execution gave its lease back"
    assert _saga_runs(live, payment_id) == 1 and captures(live.gateway_calls(event["payment_id"])) == 1
