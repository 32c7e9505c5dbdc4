"""The commands people use, against the live stack: merchants and their keys, pay, the ledger reports."""

from __future__ import annotations

import re

import httpx

from local.testing.live import LiveStack


def status_of_get(live: LiveStack, api_key: str) -> int:
    response = httpx.get(f"{live.api_url}/v1/payments/1", headers={"Authorization": f"Bearer {api_key}"}, timeout=30)
    return response.status_code


def test_merchant_keys_are_shown_once_work_and_rotate(live: LiveStack) -> None:
    created = live.cli("merchants", "create", "CLI Shop", "--currency", "EUR", "--currency", "GBP")
    assert created.returncode == 0, created.stderr
    merchant_id = re.search(r"merchant (mer_\w+) created", created.stdout)
    api_key = re.search(r"(psk_[\w-]+)", created.stdout)
    assert merchant_id and api_key
    assert status_of_get(live, api_key.group(1)) == 404  # authenticated; no such payment

    listed = live.cli("merchants", "list")
    assert merchant_id.group(1) in listed.stdout
    assert api_key.group(1) not in listed.stdout and api_key.group(1)[:12] in listed.stdout  # only a prefix

    rotated = live.cli("merchants", "rotate-key", merchant_id.group(1))
    assert rotated.returncode == 0, rotated.stderr
    new_key = re.search(r"(psk_[\w-]+)", rotated.stdout)
    assert new_key and new_key.group(1) != api_key.group(1)
    assert status_of_get(live, api_key.group(1)) == 401
    assert status_of_get(live, new_key.group(1)) == 404

    unknown = live.cli("merchants", "rotate-key", "mer_nope")
    assert unknown.returncode == 1 and "no merchant mer_nope" in unknown.stderr


def test_bad_currency_is_named(live: LiveStack) -> None:
    result = live.cli("merchants", "create", "Bad", "--currency", "EURO")
    assert result.returncode == 1 and "--currency: EURO" in result.stderr


def test_pay_sends_one_payment_as_a_checkout_would_and_the_books_balance(live: LiveStack) -> None:
    paid = live.cli("pay", "--amount", "1999", "--currency", "EUR")
    assert paid.returncode == 0, paid.stderr
    assert "HTTP 201" in paid.stdout and '"status": "succeeded"' in paid.stdout
    declined = live.cli("pay", "--amount", "1999", "--currency", "EUR", "--token", "tok_decline")
    assert "HTTP 402" in declined.stdout and "PaymentDeclined" in declined.stdout

    again = live.cli("pay", "--amount", "1999", "--currency", "EUR", "--idempotency-key", "cli-fixed-key")
    replay = live.cli("pay", "--amount", "1999", "--currency", "EUR", "--idempotency-key", "cli-fixed-key")
    assert "HTTP 201" in again.stdout and "(replayed)" in replay.stdout

    balance = live.cli("ledger", "trial-balance")
    assert balance.returncode == 0, balance.stdout + balance.stderr


def test_executions_are_listed_and_shown_state_by_state(live: LiveStack) -> None:
    paid = live.cli("pay", "--amount", "500", "--currency", "EUR", "--token", "tok_decline")
    payment_id = re.search(r'"id": "(\d+)"', paid.stdout)
    assert payment_id, paid.stdout
    listed = live.cli("executions", "list", "--payment", payment_id.group(1))
    assert listed.returncode == 0 and "FAILED" in listed.stdout and "PaymentDeclined" in listed.stdout
    name = re.search(r"(pay-\d+-\w+)", listed.stdout)
    assert name
    shown = live.cli("executions", "show", name.group(1))
    assert shown.returncode == 0, shown.stderr
    for state in ("ValidatePayment", "ReserveBalance", "AuthorizeGateway", "VoidAuthorization", "ReleaseReservation",
                  "RejectPayment", "ExecutionFailed"):
        assert state in shown.stdout


def test_payments_are_captured_refunded_cancelled_and_shown(live: LiveStack) -> None:
    held = live.cli("pay", "--amount", "5000", "--currency", "EUR", "--capture-mode", "manual")
    assert "HTTP 201" in held.stdout and '"status": "authorized"' in held.stdout, held.stdout + held.stderr
    found = re.search(r'"id": "(\d+)"', held.stdout)
    assert found is not None
    payment_id = found.group(1)

    captured = live.cli("payments", "capture", payment_id, "--amount", "3000")
    assert "HTTP 200" in captured.stdout and '"status": "succeeded"' in captured.stdout, captured.stdout
    refunded = live.cli("payments", "refund", payment_id, "--amount", "1000", "--reason", "returned")
    assert "HTTP 201" in refunded.stdout and '"object": "refund"' in refunded.stdout, refunded.stdout
    too_much = live.cli("payments", "refund", payment_id, "--amount", "2001")
    assert too_much.returncode == 1 and "HTTP 422" in too_much.stdout and "AmountExceedsRefundable" in too_much.stdout

    shown = live.cli("payments", "show", payment_id)
    assert shown.returncode == 0, shown.stderr
    for what in ("capture", "refund", "refund_post", "post", "SUCCEEDED"):
        assert what in shown.stdout, what

    other = re.search(r'"id": "(\d+)"', live.cli("pay", "--amount", "700", "--capture-mode", "manual").stdout)
    assert other is not None
    cancelled = live.cli("payments", "cancel", other.group(1), "--reason", "out of stock")
    assert "HTTP 200" in cancelled.stdout and '"status": "canceled"' in cancelled.stdout, cancelled.stdout
