"""Refunds in the ledger (ledger/posting.py): two-phase per refund, balanced, the fee returned pro rata, and a
merchant's only payment refundable in full."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, text

from ledger import ensure_chart, post, reserve
from ledger.posting import post_refund, reserve_refund, void_refund
from store import Reason
from store.operations import finish_operation, insert_operation
from tests.integration.ledger.support import assert_invariants
from tests.integration.store.support import make_merchant, make_payment, new_id

CAPTURED, FEE = 10_000, 165


def _captured_payment(conn: Connection) -> tuple[str, int]:
    """A payment of 10,000 captured in full with a fee of 165, posted, `succeeded`."""
    merchant = make_merchant(conn)
    payment = make_payment(conn, merchant_id=merchant, amount_minor=CAPTURED, currency="EUR")
    reserve(conn, payment_id=payment, merchant_id=merchant, gateway="sandbox", currency="EUR", amount_minor=CAPTURED)
    assert post(conn, payment_id=payment, amount_minor=CAPTURED, fee_minor=FEE).applied
    # Placed in its final state the way a fixture may (the lifecycle guard watches moves; this skips the steps').
    conn.execute(text("ALTER TABLE payments DISABLE TRIGGER USER"))
    conn.execute(text("UPDATE payments SET status = 'succeeded', captured_amount_minor = :c WHERE id = :id"),
                 {"c": CAPTURED, "id": payment})
    conn.execute(text("ALTER TABLE payments ENABLE TRIGGER USER"))
    return merchant, payment


def _refund(conn: Connection, merchant: str, payment: int, amount_minor: int) -> int:
    operation = new_id()
    insert_operation(conn, operation_id=operation, payment_id=payment, merchant_id=merchant, kind="refund",
                     amount_minor=amount_minor, currency="EUR")
    result = reserve_refund(conn, payment_id=payment, operation_id=operation, amount_minor=amount_minor)
    assert result.applied, result
    return operation


def _posted(conn: Connection, merchant: str) -> dict[str, int]:
    """Posted balance of the merchant's payable, the gateway's clearing and fees revenue."""
    chart = ensure_chart(conn, merchant_id=merchant, gateway="sandbox", currency="EUR")
    ids = {"payable": chart.merchant_payable_id, "clearing": chart.gateway_clearing_id, "fees": chart.fees_revenue_id}
    return {name: int(conn.execute(text("SELECT posted_balance_minor FROM v_account_balances WHERE account_id = :a"),
                                   {"a": account}).scalar_one()) for name, account in ids.items()}


def test_refunds_in_full_return_the_payment_and_exactly_its_fee(engine: Engine) -> None:
    with engine.begin() as conn:
        merchant, payment = _captured_payment(conn)
        before = _posted(conn, merchant)
        assert before["payable"] == CAPTURED - FEE
        shares = []
        for amount in (3_333, 3_333, 3_334):  # the merchant's only payment, refunded in full, in three parts
            operation = _refund(conn, merchant, payment, amount)
            posted = post_refund(conn, payment_id=payment, operation_id=operation)
            assert posted.applied, posted
            shares.append(posted.fee_minor)
        assert shares == [FEE * 3_333 // CAPTURED, FEE * 3_333 // CAPTURED, FEE - 2 * (FEE * 3_333 // CAPTURED)]
        after = _posted(conn, merchant)
        fees_before = before["fees"]
        assert after["payable"] == 0 and after["fees"] == fees_before - FEE
        assert after["clearing"] == before["clearing"] - CAPTURED
        assert_invariants(conn)


def test_a_refund_is_posted_or_voided_once_and_a_void_gives_its_fee_share_back(engine: Engine) -> None:
    with engine.begin() as conn:
        merchant, payment = _captured_payment(conn)
        refused = _refund(conn, merchant, payment, 5_000)
        assert void_refund(conn, payment_id=payment, operation_id=refused).applied
        assert void_refund(conn, payment_id=payment, operation_id=refused).reason is Reason.ALREADY_APPLIED
        assert post_refund(conn, payment_id=payment, operation_id=refused).reason is Reason.ALREADY_RESOLVED
        assert finish_operation(conn, operation_id=refused, status="failed")  # what FailOperation records with it
        assert _posted(conn, merchant)["payable"] == CAPTURED - FEE  # nothing moved
        whole = _refund(conn, merchant, payment, CAPTURED)  # the voided one's share is not counted
        posted = post_refund(conn, payment_id=payment, operation_id=whole)
        assert posted.fee_minor == FEE
        again = reserve_refund(conn, payment_id=payment, operation_id=whole, amount_minor=CAPTURED)
        assert again.reason is Reason.ALREADY_APPLIED
        assert _posted(conn, merchant)["payable"] == 0
        assert_invariants(conn)
