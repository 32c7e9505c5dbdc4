"""Helpers of the integration tests on PostgreSQL (store, ledger, the ledger CLI): a merchant and payments to write
records and post against, each with an id no other test in this process used."""

from __future__ import annotations

import hashlib
import itertools

from sqlalchemy import Connection

from store.merchants import insert_merchant
from store.payments import insert_payment

_ids = itertools.count(1)


def new_id() -> int:
    return 10_000_000 + next(_ids)


def make_merchant(conn: Connection, *, currencies: tuple[str, ...] = ("EUR",)) -> str:
    merchant_id = f"mer_{new_id()}"
    digest = hashlib.sha256(merchant_id.encode()).digest()
    insert_merchant(
        conn,
        merchant_id=merchant_id,
        name=f"Merchant {merchant_id}",
        api_key_sha256=digest,
        api_key_prefix=merchant_id[:8],
        max_amount_minor=1_000_000_00,
        currencies=currencies,
        gateway="sandbox",
    )
    return merchant_id


def make_payment(conn: Connection, *, merchant_id: str, amount_minor: int, currency: str) -> int:
    payment_id = new_id()
    result = insert_payment(
        conn, payment_id=payment_id, merchant_id=merchant_id, amount_minor=amount_minor, currency=currency
    )
    assert result.applied
    return payment_id
