"""`paysaga ledger ...` through Typer's CliRunner against a real database."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from core.settings import settings
from ledger import post, reserve, void
from local.ledger_cli import ledger_app
from tests.integration.store.support import make_merchant, make_payment

runner = CliRunner()


@pytest.fixture
def payments(engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # required by settings; the ledger CLI never uses it
    monkeypatch.setenv("COLUMNS", "250")
    settings.cache_clear()
    ids = []
    with engine.begin() as conn:
        merchant = make_merchant(conn)
        for i in range(3):
            payment = make_payment(conn, merchant_id=merchant, amount_minor=1_000 + i, currency="EUR")
            reserve(
                conn, payment_id=payment, merchant_id=merchant, gateway="adyen", currency="EUR", amount_minor=1_000 + i
            )
            ids.append(payment)
        post(conn, payment_id=ids[0], amount_minor=900, fee_minor=30)
        void(conn, payment_id=ids[1])
    yield ids
    settings.cache_clear()


def test_balances(payments: list[int]) -> None:
    result = runner.invoke(ledger_app, ["balances"])
    assert result.exit_code == 0, result.output
    assert "gateway_clearing:adyen:EUR" in result.output
    assert "fees_revenue:EUR" in result.output
    assert " 870 " in result.output  # merchant payable: 900 posted minus the 30 fee


def test_trial_balance_as_finance(payments: list[int]) -> None:
    result = runner.invoke(ledger_app, ["trial-balance", "--as-finance"])
    assert result.exit_code == 0, result.output
    assert "Totals" in result.output and "900" in result.output


def test_journal(payments: list[int]) -> None:
    result = runner.invoke(ledger_app, ["journal", str(payments[0])])
    assert result.exit_code == 0, result.output
    assert result.output.count("release") == 2 and result.output.count(" post ") >= 4
    missing = runner.invoke(ledger_app, ["journal", "1"])
    assert missing.exit_code == 1 and "no ledger entries" in missing.output


def test_export_csv(payments: list[int], tmp_path: Path) -> None:
    out = tmp_path / "entries.csv"
    result = runner.invoke(ledger_app, ["export", "--since", "2000-01-01", "--format", "csv", "--output", str(out)])
    assert result.exit_code == 0, result.output
    with out.open() as handle:
        rows = list(csv.DictReader(handle))
    # 3 reservations x 2 + post (2 release + 2 post + 2 fee) + void x 2
    assert len(rows) == 14 and "wrote 14 entries" in result.output
    assert {r["payment_id"] for r in rows} == {str(p) for p in payments}


def test_export_parquet_and_empty_range(payments: list[int], tmp_path: Path) -> None:
    out = tmp_path / "entries.parquet"
    result = runner.invoke(ledger_app, ["export", "--format", "parquet", "--output", str(out), "--as-finance"])
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.num_rows == 14
    assert sum(table.column("amount_minor").to_pylist()) > 0
    empty = tmp_path / "none.parquet"
    result = runner.invoke(
        ledger_app, ["export", "--until", "2000-01-01", "--format", "parquet", "--output", str(empty)]
    )
    assert result.exit_code == 0, result.output
    assert pq.read_table(empty).num_rows == 0
