"""The operations' bounds as PostgreSQL enforces them (migration 0007), whatever the code above does: refunds of a
payment never exceed its captured amount, under concurrent writers; a capture and a cancel exclude each other; an
operation's status moves once; a failed refund gives its amount back."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from store.operations import finish_operation, get_operation, insert_operation
from tests.integration.store.support import make_merchant, make_payment, new_id

WRITERS = 12


def _payment(conn: Connection, merchant: str, *, status: str, capture_mode: str, captured: int | None) -> int:
    payment = make_payment(conn, merchant_id=merchant, amount_minor=1_000, currency="EUR")
    # Placed directly in its status the way a fixture may: the lifecycle guard watches moves, and an INSERT is none.
    conn.execute(text("DELETE FROM payments WHERE id = :id"), {"id": payment})
    conn.execute(text("INSERT INTO payments (id, merchant_id, amount_minor, currency, status, capture_mode,"
                      " captured_amount_minor) VALUES (:id, :m, 1000, 'EUR', :s, :mode, :c)"),
                 {"id": payment, "m": merchant, "s": status, "mode": capture_mode, "c": captured})
    return payment


def _refusal(conn: Connection, write: Callable[[], object]) -> str:
    """What the database said refusing the write (it must refuse it); the transaction goes on."""
    nested = conn.begin_nested()
    try:
        write()
    except DBAPIError as error:
        nested.rollback()
        return str(error.orig)
    nested.rollback()
    raise AssertionError("the database accepted the write")


def _race(engine: Engine, write: Callable[[Connection, int], None]) -> list[str]:
    """Run `write` on WRITERS connections at once (each its own transaction); what each ended with."""
    start, outcomes, lock = threading.Barrier(WRITERS), [], threading.Lock()

    def one(index: int) -> None:
        try:
            with engine.begin() as conn:
                start.wait()
                write(conn, index)
            outcome = "ok"
        except IntegrityError as error:
            outcome = str(error.orig).splitlines()[0]
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(outcomes) == WRITERS
    return outcomes


def test_concurrent_refunds_never_exceed_the_captured_amount(engine: Engine) -> None:
    with engine.begin() as conn:
        merchant = make_merchant(conn)
        payment = _payment(conn, merchant, status="succeeded", capture_mode="automatic", captured=700)

    def refund(conn: Connection, _: int) -> None:
        insert_operation(conn, operation_id=new_id(), payment_id=payment, merchant_id=merchant, kind="refund",
                         amount_minor=100, currency="EUR")

    outcomes = _race(engine, refund)
    assert outcomes.count("ok") == 7, outcomes
    assert all("refunds_within_captured" in o for o in outcomes if o != "ok"), outcomes
    with engine.connect() as conn:
        reserved = conn.execute(text("SELECT refund_reserved_minor FROM payments WHERE id = :id"),
                                {"id": payment}).scalar_one()
        total = conn.execute(text("SELECT sum(amount_minor) FROM payment_operations WHERE payment_id = :id"),
                             {"id": payment}).scalar_one()
    assert reserved == total == 700


def test_a_failed_refund_gives_its_amount_back_once(engine: Engine) -> None:
    with engine.begin() as conn:
        merchant = make_merchant(conn)
        payment = _payment(conn, merchant, status="succeeded", capture_mode="automatic", captured=500)
        refund = new_id()
        insert_operation(conn, operation_id=refund, payment_id=payment, merchant_id=merchant, kind="refund",
                         amount_minor=500, currency="EUR")
        assert finish_operation(conn, operation_id=refund, status="failed", failure_code="RefundFailed")
        assert not finish_operation(conn, operation_id=refund, status="succeeded")  # decided once
        reserved = conn.execute(text("SELECT refund_reserved_minor FROM payments WHERE id = :id"),
                                {"id": payment}).scalar_one()
        assert reserved == 0
        found = get_operation(conn, operation_id=refund)
        assert found is not None and found.status == "failed"
        assert "is final" in _refusal(conn, lambda: conn.execute(
            text("UPDATE payment_operations SET status = 'succeeded' WHERE id = :id"), {"id": refund}))


def test_capture_and_cancel_exclude_each_other_under_concurrency(engine: Engine) -> None:
    with engine.begin() as conn:
        merchant = make_merchant(conn)
        payment = _payment(conn, merchant, status="authorized", capture_mode="manual", captured=None)

    def capture_or_cancel(conn: Connection, index: int) -> None:
        kind = "capture" if index % 2 == 0 else "cancel"
        insert_operation(conn, operation_id=new_id(), payment_id=payment, merchant_id=merchant, kind=kind,
                         amount_minor=1_000 if kind == "capture" else None, currency="EUR")

    outcomes = _race(engine, capture_or_cancel)
    assert outcomes.count("ok") == 1, outcomes
    assert all("one_capture_or_cancel" in o for o in outcomes if o != "ok"), outcomes


@pytest.mark.parametrize(("status", "mode", "captured", "kind", "why"), [
    ("authorized", "manual", None, "refund", "needs a succeeded payment"),
    ("succeeded", "automatic", 1_000, "capture", "needs an authorized manual-capture payment"),
    ("authorized", "automatic", None, "cancel", "needs an authorized manual-capture payment"),
])
def test_an_operation_the_payment_s_state_refuses_is_never_written(engine: Engine, status: str, mode: str,
                                                                    captured: int | None, kind: str, why: str) -> None:
    with engine.begin() as conn:
        merchant = make_merchant(conn)
        payment = _payment(conn, merchant, status=status, capture_mode=mode, captured=captured)
        assert why in _refusal(conn, lambda: insert_operation(
            conn, operation_id=new_id(), payment_id=payment, merchant_id=merchant, kind=kind,
            amount_minor=None if kind == "cancel" else 100, currency="EUR"))
