"""The finance role reads the ledger views and balance_at() and nothing else; the views say what the books say."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import errors
from sqlalchemy import Engine, text

from ledger import post, reserve, reverse
from ledger.reports import balances_at, journal, trial_balance
from tests.integration.store.support import make_merchant, make_payment

BASE_TABLES = (
    "accounts",
    "ledger_entries",
    "ledger_transactions",
    "payments",
    "merchants",
    "outbox",
    "saga_executions",
)
VIEWS = ("v_account_balances", "v_trial_balance", "v_trial_balance_totals", "v_journal")
RECONCILIATION_VIEWS = ("v_settlement_batches", "v_settlement_lines", "v_recon_runs", "v_recon_discrepancies",
                        "v_recon_discrepancy_history", "v_batch_clearing")


@pytest.fixture
def payment(engine: Engine) -> int:
    with engine.begin() as conn:
        merchant = make_merchant(conn)
        payment_id = make_payment(conn, merchant_id=merchant, amount_minor=5_000, currency="EUR")
        reserve(conn, payment_id=payment_id, merchant_id=merchant, gateway="stripe", currency="EUR", amount_minor=5_000)
    with engine.begin() as conn:  # a transaction of its own, so balance_at can see the moment in between
        post(conn, payment_id=payment_id, amount_minor=4_000, fee_minor=120)
    return payment_id


@pytest.fixture
def finance(database_url: str, payment: int) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute("SET ROLE paysaga_finance")
        yield conn


def test_role_is_nologin_and_read_only(finance: psycopg.Connection) -> None:
    row = finance.execute(
        "SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = 'paysaga_finance'"
    ).fetchone()
    assert row == (False, False, False, False)
    grants = finance.execute(
        "SELECT table_name, privilege_type FROM information_schema.role_table_grants"
        " WHERE grantee = 'paysaga_finance' ORDER BY table_name"
    ).fetchall()
    # 0002's ledger views and 0008's reconciliation views, SELECT only.
    assert grants == [(view, "SELECT") for view in sorted(VIEWS + RECONCILIATION_VIEWS)]


@pytest.mark.parametrize("view", VIEWS)
def test_finance_reads_every_view(finance: psycopg.Connection, view: str) -> None:
    assert finance.execute(f"SELECT count(*) FROM {view}").fetchone() != (0,)


def test_finance_reads_balance_at(finance: psycopg.Connection) -> None:
    rows = finance.execute("SELECT code, posted_balance_minor FROM balance_at(now()) ORDER BY code").fetchall()
    assert ("fees_revenue:EUR", 120) in rows
    assert ("gateway_clearing:stripe:EUR", 4_000) in rows


@pytest.mark.parametrize("table", BASE_TABLES)
def test_finance_cannot_read_base_tables(finance: psycopg.Connection, table: str) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        finance.execute(f"SELECT 1 FROM {table} LIMIT 1")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE accounts SET version = version + 1",
        "DELETE FROM payments",
        "INSERT INTO merchants (id, name, api_key_sha256, api_key_prefix, max_amount_minor, currencies)"
        " VALUES ('x', 'x', '\\x00', 'x', 1, '{}')",
        "UPDATE v_account_balances SET code = 'x'",
        "CREATE TABLE finance_scratch (x int)",
    ],
)
def test_finance_cannot_write(finance: psycopg.Connection, statement: str) -> None:
    with pytest.raises(errors.InsufficientPrivilege):
        finance.execute(statement)


def test_views_report_the_books(engine: Engine, payment: int) -> None:
    with engine.begin() as conn:
        reverse(conn, payment_id=payment)
        lines, totals = trial_balance(conn)
        entries = journal(conn, payment_id=payment)
    assert totals == [
        {"currency": "EUR", "total_debits_minor": 0, "total_credits_minor": 0, "difference_minor": 0}
    ]  # reversed: every account nets to zero
    assert lines == []
    kinds = [e["transaction_kind"] for e in entries]
    assert kinds == ["reserve"] * 2 + ["post"] * 6 + ["reverse"] * 4
    assert sum(e["amount_minor"] for e in entries if e["transaction_kind"] == "reverse") == 2 * 4_000 + 2 * 120


def test_trial_balance_balances_with_open_positions(engine: Engine, payment: int) -> None:
    with engine.connect() as conn:
        lines, totals = trial_balance(conn)
    assert totals == [
        {"currency": "EUR", "total_debits_minor": 4_000, "total_credits_minor": 4_000, "difference_minor": 0}
    ]
    assert {line["code"]: (line["debit_balance_minor"], line["credit_balance_minor"]) for line in lines} == {
        "fees_revenue:EUR": (0, 120),
        "gateway_clearing:stripe:EUR": (4_000, 0),
        next(line["code"] for line in lines if line["code"].startswith("merchant_payable")): (0, 3_880),
    }


def test_balance_at_before_anything_is_zero(engine: Engine, payment: int) -> None:
    with engine.connect() as conn:
        first = conn.execute(text("SELECT min(created_at) FROM v_journal")).scalar_one()
        before = balances_at(conn, as_of=first.replace(year=first.year - 1))
        at = balances_at(conn, as_of=first)
    assert before and all(r["posted_balance_minor"] == 0 and r["credits_pending"] == 0 for r in before)
    # At the reservation's commit time only the pending transfer exists.
    assert {r["credits_pending"] for r in at} == {0, 5_000}
