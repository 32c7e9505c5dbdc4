"""Helpers of the reconciliation tests: captured (and refunded) payments in the ledger as the steps leave them, and
settlement lines built for the test."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, text

from ledger import post, reserve
from ledger.posting import post_refund, reserve_refund
from ledger.reconciliation.lines import LineType, SettlementLine, SettlementSource
from ledger.reconciliation.terms import expected_fee_minor
from store.operations import finish_operation, insert_operation
from tests.integration.store.support import make_merchant, make_payment, new_id

NOW = datetime.now(UTC)


def captured(conn: Connection, merchant: str, amount_minor: int, currency: str = "EUR",
             gateway: str = "sandbox") -> int:
    """A payment captured in full at `gateway` and posted (fee 1 %), `succeeded`, with gateway reference psp_<id>."""
    payment = make_payment(conn, merchant_id=merchant, amount_minor=amount_minor, currency=currency)
    reserve(conn, payment_id=payment, merchant_id=merchant, gateway=gateway, currency=currency,
            amount_minor=amount_minor)
    assert post(conn, payment_id=payment, amount_minor=amount_minor, fee_minor=amount_minor // 100).applied
    conn.execute(text("ALTER TABLE payments DISABLE TRIGGER USER"))
    conn.execute(text("UPDATE payments SET status = 'succeeded', captured_amount_minor = :c, gateway = :g,"
                      " gateway_reference = :r WHERE id = :id"),
                 {"c": amount_minor, "g": gateway, "r": f"psp_{payment}", "id": payment})
    conn.execute(text("ALTER TABLE payments ENABLE TRIGGER USER"))
    return payment


def refunded(conn: Connection, merchant: str, payment: int, amount_minor: int, currency: str = "EUR") -> int:
    """A refund of `payment` posted, its gateway reference ref_<id>."""
    operation = new_id()
    insert_operation(conn, operation_id=operation, payment_id=payment, merchant_id=merchant, kind="refund",
                     amount_minor=amount_minor, currency=currency)
    assert reserve_refund(conn, payment_id=payment, operation_id=operation, amount_minor=amount_minor).applied
    assert post_refund(conn, payment_id=payment, operation_id=operation).applied
    assert finish_operation(conn, operation_id=operation, status="succeeded", gateway_reference=f"ref_{operation}")
    return operation


def line(n: int, type_: LineType, gross: int, *, currency: str = "EUR", batch: str = "B1", fee: int | None = None,
         payment: int | None = None, operation: int | None = None, gateway: str = "sandbox",
         booked_at: datetime = NOW, key: str | None = None) -> SettlementLine:
    """A settlement line; the fee by the gateway's terms unless given."""
    fee = expected_fee_minor(gateway, type_, gross, currency) if fee is None else fee
    return SettlementLine(
        line_number=n, line_key=key or f"{batch}:{n}", batch_reference=batch, type=type_, currency=currency,
        gross_minor=gross, fee_minor=fee, net_minor=gross - fee, booked_at=booked_at,
        payment_reference=None if payment is None else str(payment),
        gateway_reference=None if payment is None else f"psp_{payment}",
        operation_reference=None if operation is None else str(operation),
        modification_reference=None if operation is None else f"ref_{operation}", raw={"n": n})


def payout(n: int, lines: list[SettlementLine], *, batch: str = "B1", currency: str = "EUR", off_by: int = 0
           ) -> SettlementLine:
    """The batch's payout: the sum of its lines' nets (plus `off_by`)."""
    paid = sum(item.net_minor for item in lines if item.batch_reference == batch and item.currency == currency)
    return SettlementLine(line_number=n, line_key=f"{batch}:payout:{currency}", batch_reference=batch,
                          type=LineType.PAYOUT, currency=currency, gross_minor=-(paid + off_by), fee_minor=0,
                          net_minor=-(paid + off_by), booked_at=NOW)


def source(lines: list[SettlementLine], *, gateway: str = "sandbox", name: str = "test.csv") -> SettlementSource:
    digest = hashlib.sha256(json.dumps([repr(item) for item in lines]).encode()).hexdigest()
    return SettlementSource(gateway, name, digest, tuple(lines))


def scalar(conn: Connection, sql: str, **params: Any) -> Any:
    return conn.execute(text(sql), params).scalar_one()


def new_merchant(conn: Connection) -> str:
    return make_merchant(conn, currencies=("EUR", "JPY", "KWD", "USD"))
