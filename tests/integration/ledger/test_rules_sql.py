"""Try to break the ledger's rules with raw SQL and see PostgreSQL itself refuse."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg import errors
from sqlalchemy import Engine

from ledger.chart import ensure_chart
from ledger.posting import post, reserve
from tests.integration.store.support import make_merchant, make_payment

Entry = tuple[int, str, str, int]  # account_id, side, effect, amount_minor


@dataclass(frozen=True)
class Books:
    url: str
    merchant_id: str
    payment_id: int
    payable: int
    clearing: int
    fees: int


@pytest.fixture
def books(engine: Engine, database_url: str) -> Books:
    """A merchant with 100.00 EUR posted to its payable (one reserved-and-posted payment)."""
    with engine.begin() as conn:
        merchant_id = make_merchant(conn)
        payment_id = make_payment(conn, merchant_id=merchant_id, amount_minor=10_000, currency="EUR")
        chart = ensure_chart(conn, merchant_id=merchant_id, gateway="sandbox", currency="EUR")
        assert reserve(
            conn, payment_id=payment_id, merchant_id=merchant_id, gateway="sandbox", currency="EUR", amount_minor=10_000
        ).applied
        assert post(conn, payment_id=payment_id, amount_minor=10_000).applied
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    return Books(
        url, merchant_id, payment_id, chart.merchant_payable_id, chart.gateway_clearing_id, chart.fees_revenue_id
    )


@pytest.fixture
def raw(books: Books) -> Iterator[psycopg.Connection]:
    with psycopg.connect(books.url) as conn:
        yield conn


def new_payment(conn: psycopg.Connection, books: Books) -> int:
    row = conn.execute(
        "INSERT INTO payments (id, merchant_id, amount_minor, currency)"
        " SELECT coalesce(max(id), 0) + 1, %s, 100, 'EUR' FROM payments RETURNING id",
        (books.merchant_id,),
    ).fetchone()
    assert row is not None
    return int(row[0])


def raw_transaction(
    conn: psycopg.Connection, *, payment_id: int, entries: list[Entry], currency: str = "EUR", kind: str = "reserve"
) -> int:
    row = conn.execute(
        "INSERT INTO ledger_transactions (payment_id, kind, currency, amount_minor)"
        " VALUES (%s, %s, %s, 1) RETURNING id",
        (payment_id, kind, currency),
    ).fetchone()
    assert row is not None
    for account_id, side, effect, amount in entries:
        conn.execute(
            "INSERT INTO ledger_entries (transaction_id, account_id, currency, side, effect, amount_minor)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (row[0], account_id, currency, side, effect, amount),
        )
    return int(row[0])


def test_entries_cannot_be_updated(raw: psycopg.Connection) -> None:
    with pytest.raises(errors.RestrictViolation, match="append-only"):
        raw.execute("UPDATE ledger_entries SET amount_minor = amount_minor + 1")


def test_entries_cannot_be_deleted_or_truncated(raw: psycopg.Connection) -> None:
    with pytest.raises(errors.RestrictViolation, match="append-only"):
        raw.execute("DELETE FROM ledger_entries")
    raw.rollback()
    with pytest.raises(errors.RestrictViolation, match="append-only"):
        raw.execute("TRUNCATE ledger_entries CASCADE")
    raw.rollback()
    assert raw.execute("SELECT count(*) FROM ledger_entries").fetchone() == (6,)


def test_transactions_cannot_be_updated_or_deleted(raw: psycopg.Connection) -> None:
    with pytest.raises(errors.RestrictViolation):
        raw.execute("UPDATE ledger_transactions SET amount_minor = 1")
    raw.rollback()
    with pytest.raises(errors.RestrictViolation):
        raw.execute("DELETE FROM ledger_transactions")


def test_entries_cannot_be_added_to_an_earlier_transaction(raw: psycopg.Connection, books: Books) -> None:
    """Even a balanced pair of entries: an earlier transaction is closed once its database transaction committed."""
    row = raw.execute(
        "SELECT id FROM ledger_transactions WHERE payment_id = %s AND kind = 'post'", (books.payment_id,)
    ).fetchone()
    assert row is not None
    with pytest.raises(errors.RestrictViolation, match="cannot be added to it later"):
        raw.execute(
            "INSERT INTO ledger_entries (transaction_id, account_id, currency, side, effect, amount_minor)"
            " VALUES (%s, %s, 'EUR', 'debit', 'post', 1), (%s, %s, 'EUR', 'credit', 'post', 1)",
            (row[0], books.clearing, row[0], books.payable),
        )


def test_unbalanced_transaction_is_refused_at_commit(raw: psycopg.Connection, books: Books) -> None:
    payment = new_payment(raw, books)
    raw_transaction(
        raw,
        payment_id=payment,
        entries=[(books.clearing, "debit", "post", 500), (books.payable, "credit", "post", 499)],
    )
    with pytest.raises(errors.CheckViolation, match="does not balance"):
        raw.commit()


def test_balanced_per_effect_not_just_in_total(raw: psycopg.Connection, books: Books) -> None:
    payment = new_payment(raw, books)
    raw_transaction(
        raw,
        payment_id=payment,
        entries=[(books.clearing, "debit", "pending", 500), (books.payable, "credit", "post", 500)],
    )
    with pytest.raises(errors.CheckViolation, match="does not balance"):
        raw.commit()


def test_transaction_without_entries_or_with_one_is_refused(raw: psycopg.Connection, books: Books) -> None:
    raw_transaction(raw, payment_id=new_payment(raw, books), entries=[])
    with pytest.raises(errors.CheckViolation, match="at least two"):
        raw.commit()
    raw_transaction(raw, payment_id=new_payment(raw, books), entries=[(books.clearing, "debit", "pending", 5)])
    with pytest.raises(errors.CheckViolation, match="at least two"):
        raw.commit()


def test_balanced_transaction_commits_and_moves_totals(raw: psycopg.Connection, books: Books) -> None:
    payment = new_payment(raw, books)
    raw_transaction(
        raw,
        payment_id=payment,
        entries=[(books.clearing, "debit", "post", 700), (books.payable, "credit", "post", 700)],
    )
    raw.commit()
    row = raw.execute("SELECT credits_posted FROM accounts WHERE id = %s", (books.payable,)).fetchone()
    assert row == (10_700,)


def test_entry_in_another_currency_than_its_account_is_refused(raw: psycopg.Connection, books: Books) -> None:
    payment = new_payment(raw, books)
    with pytest.raises(errors.ForeignKeyViolation):
        raw_transaction(
            raw,
            payment_id=payment,
            currency="USD",
            entries=[(books.clearing, "debit", "post", 5), (books.payable, "credit", "post", 5)],
        )


def test_entries_in_another_currency_than_their_transaction_are_refused(raw: psycopg.Connection, books: Books) -> None:
    payment = new_payment(raw, books)
    tx = raw_transaction(
        raw, payment_id=payment, entries=[(books.clearing, "debit", "post", 5), (books.payable, "credit", "post", 5)]
    )
    raw.execute(
        "INSERT INTO accounts (code, kind, currency, normal_side) VALUES ('x:USD', 'fees_revenue', 'USD', 'debit')"
    )
    raw.execute(
        "INSERT INTO accounts (code, kind, currency, normal_side) VALUES ('y:USD', 'fees_revenue', 'USD', 'credit')"
    )
    raw.execute(
        "INSERT INTO ledger_entries (transaction_id, account_id, currency, side, effect, amount_minor)"
        " SELECT %s, id, 'USD', CASE code WHEN 'x:USD' THEN 'debit' ELSE 'credit' END, 'post', 3"
        " FROM accounts WHERE currency = 'USD'",
        (tx,),
    )
    with pytest.raises(errors.CheckViolation, match="another currency"):
        raw.commit()


@pytest.mark.parametrize("amount", [0, -5])
def test_amounts_must_be_positive(raw: psycopg.Connection, books: Books, amount: int) -> None:
    payment = new_payment(raw, books)
    with pytest.raises(errors.CheckViolation, match="amount_positive"):
        raw_transaction(
            raw,
            payment_id=payment,
            entries=[(books.clearing, "debit", "post", amount), (books.payable, "credit", "post", amount)],
        )


def test_flagged_account_cannot_be_overdrawn(raw: psycopg.Connection, books: Books) -> None:
    payment = new_payment(raw, books)
    with pytest.raises(errors.CheckViolation, match="debits_within_credits"):
        raw_transaction(
            raw,
            payment_id=payment,
            entries=[(books.clearing, "credit", "post", 10_001), (books.payable, "debit", "post", 10_001)],
        )


def test_pending_debits_count_against_a_flagged_account(raw: psycopg.Connection, books: Books) -> None:
    payment = new_payment(raw, books)
    with pytest.raises(errors.CheckViolation, match="debits_within_credits"):
        raw_transaction(
            raw,
            payment_id=payment,
            entries=[(books.clearing, "credit", "pending", 10_001), (books.payable, "debit", "pending", 10_001)],
        )


def test_account_totals_change_only_through_entries(raw: psycopg.Connection, books: Books) -> None:
    with pytest.raises(errors.RestrictViolation, match="only through ledger entries"):
        raw.execute("UPDATE accounts SET credits_posted = credits_posted + 1000000 WHERE id = %s", (books.payable,))
    raw.rollback()
    with pytest.raises(errors.CheckViolation, match="zero totals"):
        raw.execute(
            "INSERT INTO accounts (code, kind, currency, normal_side, credits_posted)"
            " VALUES ('rich', 'fees_revenue', 'EUR', 'credit', 5)"
        )
    raw.rollback()
    with pytest.raises(errors.RestrictViolation):
        raw.execute("DELETE FROM accounts WHERE id = %s", (books.payable,))


def test_one_reservation_resolves_once(raw: psycopg.Connection, books: Books) -> None:
    pending = raw.execute(
        "SELECT id FROM ledger_transactions WHERE payment_id = %s AND kind = 'reserve'", (books.payment_id,)
    ).fetchone()
    assert pending is not None
    with pytest.raises(errors.UniqueViolation):
        raw.execute(
            "INSERT INTO ledger_transactions (payment_id, kind, currency, amount_minor, pending_transaction_id)"
            " VALUES (%s, 'void', 'EUR', 1, %s)",
            (books.payment_id, pending[0]),
        )


def test_concurrent_overdrafts_leave_the_flagged_account_non_negative(books: Books) -> None:
    """Eight writers each try to take 30.00 of the 100.00 at once: exactly three can, the rest are refused."""
    writers = 8
    barrier = threading.Barrier(writers)
    outcomes: list[str] = []
    lock = threading.Lock()

    def take() -> None:
        with psycopg.connect(books.url) as conn:
            payment = None
            with lock:
                payment = new_payment(conn, books)
                conn.commit()
            barrier.wait(timeout=30)
            try:
                raw_transaction(
                    conn,
                    payment_id=payment,
                    entries=[(books.clearing, "credit", "post", 3_000), (books.payable, "debit", "post", 3_000)],
                )
                conn.commit()
                outcome = "ok"
            except errors.CheckViolation:
                conn.rollback()
                outcome = "refused"
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=take) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["ok"] * 3 + ["refused"] * 5
    with psycopg.connect(books.url) as conn:
        row = conn.execute(
            "SELECT credits_posted - debits_posted - debits_pending FROM accounts WHERE id = %s", (books.payable,)
        ).fetchone()
    assert row == (1_000,)
