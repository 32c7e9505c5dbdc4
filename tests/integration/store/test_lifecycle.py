"""The payment lifecycle and the execution lease, as PostgreSQL enforces them (migration 0003): every move the
lifecycle allows is accepted, every other one refused, a captured payment never fails, and a stale lease token
writes nothing."""

from __future__ import annotations

import itertools

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from store import lifecycle
from store.leases import Lease, LeaseHeld, holder_of, release_lease, take_lease
from store.payments import get_payment, transition_payment
from store.results import Reason
from tests.integration.store.support import make_merchant, make_payment


def _payment_in(conn: Connection, merchant: str, status: str) -> int:
    payment = make_payment(conn, merchant_id=merchant, amount_minor=1_000, currency="EUR")
    # Placed directly in `status` the way a fixture may: the guard watches moves, and an INSERT is none.
    conn.execute(text("DELETE FROM payments WHERE id = :id"), {"id": payment})
    conn.execute(text("INSERT INTO payments (id, merchant_id, amount_minor, currency, status)"
                      " VALUES (:id, :m, 1000, 'EUR', :s)"), {"id": payment, "m": merchant, "s": status})
    return payment


def _moves(conn: Connection, payment: int, to_status: str) -> bool:
    with conn.begin_nested() as nested:
        try:
            conn.execute(text("UPDATE payments SET status = :s WHERE id = :id"), {"s": to_status, "id": payment})
        except DBAPIError as error:
            assert "is not a move of the payment lifecycle" in str(error.orig), error
            nested.rollback()
            return False
        nested.rollback()
        return True


def _refusal(conn: Connection, statement: str, payment: int) -> str:
    """What the database said refusing the statement (it must refuse it)."""
    nested = conn.begin_nested()
    try:
        conn.execute(text(statement), {"id": payment})
    except DBAPIError as error:
        nested.rollback()
        return str(error.orig)
    nested.rollback()
    raise AssertionError(f"the database accepted {statement}")


def test_the_database_holds_exactly_the_lifecycle_transitions(engine: Engine) -> None:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT from_status, to_status FROM payment_transitions")).all()
    in_database = {(str(a), str(b)) for a, b in rows}
    in_code = {(a, b) for a, targets in lifecycle.TRANSITIONS.items() for b in targets}
    assert in_database == in_code


def test_every_allowed_move_is_accepted_and_every_other_refused(engine: Engine) -> None:
    with engine.begin() as conn:
        merchant = make_merchant(conn)
        payments = {status: _payment_in(conn, merchant, status) for status in lifecycle.PAYMENT_STATUSES}
        wrong = [(a, b) for a, b in itertools.product(lifecycle.PAYMENT_STATUSES, repeat=2)
                 if _moves(conn, payments[a], b) != lifecycle.allowed(a, b)]
    assert wrong == [], wrong


def test_a_succeeded_payment_can_never_fail(engine: Engine) -> None:
    with engine.begin() as conn:
        payment = _payment_in(conn, make_merchant(conn), "succeeded")
        for status in ("failed", "rejected", "released", "needs_attention"):
            assert not _moves(conn, payment, status)


def test_a_row_that_records_a_capture_is_never_in_a_failed_status(engine: Engine) -> None:
    with engine.begin() as conn:
        payment = _payment_in(conn, make_merchant(conn), "needs_attention")
        conn.execute(text("UPDATE payments SET captured_amount_minor = 700 WHERE id = :id"), {"id": payment})
        assert "captured_never_failed" in _refusal(conn, "UPDATE payments SET status = 'failed' WHERE id = :id",
                                                   payment)
        assert "captured_never_failed" in _refusal(conn, "UPDATE payments SET status = 'rejected' WHERE id = :id",
                                                   payment)
        # A status that may hold a capture takes it (refunded: the money went back, and the row says how much).
        conn.execute(text("UPDATE payments SET status = 'refunded' WHERE id = :id"), {"id": payment})
        status = conn.execute(text("SELECT status FROM payments WHERE id = :id"), {"id": payment}).scalar_one()
        assert status == "refunded" and status in lifecycle.HOLDS_CAPTURE


def test_one_lease_at_a_time_and_its_token_only_goes_up(engine: Engine) -> None:
    with engine.begin() as conn:
        payment = make_payment(conn, merchant_id=make_merchant(conn), amount_minor=500, currency="EUR")
        first = take_lease(conn, payment_id=payment, holder="exec-1", lease_ms=60_000)
        assert isinstance(first, Lease) and first.token == 1
        second = take_lease(conn, payment_id=payment, holder="exec-2", lease_ms=60_000)
        assert isinstance(second, LeaseHeld) and second.holder == "exec-1"
        # Even a write that skips take_lease's condition cannot take a held payment, nor lower the token.
        for statement in ("UPDATE payments SET lease_token = lease_token + 1, lease_holder = 'x' WHERE id = :id",
                          "UPDATE payments SET lease_token = 0 WHERE id = :id"):
            assert "lease" in _refusal(conn, statement, payment)
        assert release_lease(conn, lease=first) and holder_of(conn, payment_id=payment) is None
        assert not release_lease(conn, lease=first), "released twice"
        third = take_lease(conn, payment_id=payment, holder="exec-3", lease_ms=60_000)
        assert isinstance(third, Lease) and third.token == 2


def test_an_expired_lease_is_taken_over_and_the_stale_holder_writes_nothing(engine: Engine) -> None:
    with engine.begin() as conn:
        payment = make_payment(conn, merchant_id=make_merchant(conn), amount_minor=500, currency="EUR")
        stale = take_lease(conn, payment_id=payment, holder="exec-1", lease_ms=60_000)
        assert isinstance(stale, Lease)
        # Its expiry passes (judged by the database's clock).
        conn.execute(text("UPDATE payments SET lease_expires_at = clock_timestamp() WHERE id = :id"), {"id": payment})
        fresh = take_lease(conn, payment_id=payment, holder="exec-2", lease_ms=60_000)
        assert isinstance(fresh, Lease) and fresh.token == stale.token + 1
        before = get_payment(conn, payment_id=payment)
        assert before is not None
        late = transition_payment(conn, payment_id=payment, expected_version=before.version, to_status="validated",
                                  lease_token=stale.token)
        assert (late.applied, late.reason) == (False, Reason.LEASE_LOST)
        assert get_payment(conn, payment_id=payment) == before, "the stale execution's write changed the payment"
        assert not release_lease(conn, lease=stale), "a stale holder released the new holder's lease"
        current = transition_payment(conn, payment_id=payment, expected_version=before.version,
                                     to_status="validated", lease_token=fresh.token)
        assert current.applied and current.status == "validated"
