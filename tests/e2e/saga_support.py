"""Helpers for end-to-end saga tests: send a payment, then read every place the truth lives."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import text
from ulid import ULID

from tests.support.live import LiveStack


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
