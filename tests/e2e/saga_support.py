"""Helpers for end-to-end saga tests: send a payment, then read every place the truth lives."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text
from ulid import ULID

from local.testing.live import LiveStack
from store.leases import Lease, take_lease
from store.payments import insert_payment

_ids = iter(range(7_000_000_000_000, 8_000_000_000_000))


def new_payment(live: LiveStack, *, token: str = "tok_approve", amount_minor: int = 1234) -> dict[str, Any]:
    """A payment written as the start path writes it, and the step input of an execution holding its lease."""
    merchant_id, _ = live.new_merchant()
    payment_id = next(_ids)
    with live.engine.begin() as conn:
        insert_payment(conn, payment_id=payment_id, merchant_id=merchant_id, amount_minor=amount_minor,
                       currency="EUR", gateway="sandbox", customer_ref=f"cus_{payment_id}", order_ref="o",
                       payment_method_token=token)
        lease = take_lease(conn, payment_id=payment_id, holder="test-steps", lease_ms=60_000)
    assert isinstance(lease, Lease)
    return {"payment_id": str(payment_id), "merchant_id": merchant_id, "lease_token": lease.token}


def take_over(live: LiveStack, event: dict[str, Any], holder: str = "test-newer") -> dict[str, Any]:
    """The lease of the execution behind `event` lapses and a newer execution takes the payment: its step input."""
    payment_id = int(event["payment_id"])
    with live.engine.begin() as conn:
        conn.execute(text("UPDATE payments SET lease_expires_at = clock_timestamp() WHERE id = :id"),
                     {"id": payment_id})
        lease = take_lease(conn, payment_id=payment_id, holder=holder, lease_ms=60_000)
    assert isinstance(lease, Lease) and lease.token > event["lease_token"]
    return {**event, "lease_token": lease.token}


def pay(live: LiveStack, api_key: str, *, amount_minor: int = 1999, currency: str = "EUR",
        token: str = "tok_approve", customer: str | None = None, key: str | None = None,
        **extra: Any) -> httpx.Response:
    body = {"amount_minor": amount_minor, "currency": currency, "payment_method_token": token,
            "customer_reference": customer or f"cus_{ULID()}", "order_reference": f"ord_{ULID()}", **extra}
    return httpx.post(f"{live.api_url}/v1/payments", json=body, timeout=120,
                      headers={"Authorization": f"Bearer {api_key}", "Idempotency-Key": key or str(ULID())})


def payment_row(live: LiveStack, payment_id: str) -> dict[str, Any]:
    with live.engine.connect() as conn:
        row = conn.execute(text("SELECT * FROM payments WHERE id = :id"), {"id": int(payment_id)}).mappings().one()
    return dict(row)


def ledger_kinds(live: LiveStack, payment_id: str) -> list[str]:
    with live.engine.connect() as conn:
        rows = conn.execute(text("SELECT kind FROM ledger_transactions WHERE payment_id = :id ORDER BY id"),
                            {"id": int(payment_id)}).scalars().all()
    return list(rows)


def books_balance(live: LiveStack, *payment_ids: str) -> tuple[int, int, int]:
    """(sum of debits, sum of credits) over the whole ledger, and how many of these payments are finished with their
    reservation still open (other tests in the session may leave half-run payments of their own on purpose)."""
    with live.engine.connect() as conn:
        debits, credits = conn.execute(text(
            "SELECT coalesce(sum(amount_minor) FILTER (WHERE side = 'debit'), 0),"
            "       coalesce(sum(amount_minor) FILTER (WHERE side = 'credit'), 0) FROM ledger_entries")).one()
        stranded = conn.execute(text(
            "SELECT count(*) FROM ledger_transactions r JOIN payments p ON p.id = r.payment_id"
            " WHERE r.kind = 'reserve'"
            "   AND p.status IN ('succeeded', 'failed', 'rejected', 'refunded', 'review')"
            "   AND r.payment_id = ANY(:ids)"
            "   AND NOT EXISTS (SELECT 1 FROM ledger_transactions x WHERE x.pending_transaction_id = r.id)"
        ), {"ids": [int(p) for p in payment_ids]}).scalar_one()
    return int(debits), int(credits), int(stranded)


def authorizations(calls: list[dict[str, Any]]) -> int:
    return sum(1 for c in calls if c["operation"] == "authorize" and c["committed"])


def captures(calls: list[dict[str, Any]]) -> int:
    """Captures that moved (or will move) money: a refused capture is recorded but took nothing."""
    return sum(1 for c in calls if c["operation"] == "capture" and c["committed"]
               and c["outcome"] in ("captured", "capture_submitted"))


def outbox(live: LiveStack, payment_id: str) -> list[dict[str, Any]]:
    with live.engine.connect() as conn:
        rows = conn.execute(text("SELECT event_type, sent_at, attempts FROM outbox WHERE payment_id = :id"),
                            {"id": int(payment_id)}).mappings().all()
    return [dict(r) for r in rows]
