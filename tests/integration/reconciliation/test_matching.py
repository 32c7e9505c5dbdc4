"""Reconciliation on a real PostgreSQL: every outcome planted once and found once, nothing else flagged; imports are
idempotent and whole; the settlement is posted balanced and a matched batch nets the clearing account to zero;
discrepancies are worked with a history the database keeps."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

from ledger.reconciliation.discrepancies import DiscrepancyError, history, list_discrepancies, resolve
from ledger.reconciliation.importer import SettlementConflict, import_settlement
from ledger.reconciliation.lines import LineType
from ledger.reconciliation.runs import PostgresSource, RunReport, run_reconciliation
from local.recon.duckdb_source import ParquetSource
from local.recon.parquet_landing import land_days
from tests.integration.ledger.support import assert_invariants
from tests.integration.reconciliation.support import (
    NOW,
    captured,
    line,
    new_merchant,
    payout,
    refunded,
    scalar,
    source,
)

C, R = LineType.CAPTURE, LineType.REFUND
AS_OF = NOW + timedelta(days=2)  # past the sandbox's one-day settlement delay


def _run(engine: Engine, as_of=AS_OF) -> RunReport:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        return run_reconciliation(conn, source=PostgresSource(conn), as_of=as_of)


def _planted(conn: Connection) -> dict[str, int]:
    merchant = new_merchant(conn)
    ids = {name: captured(conn, merchant, amount, currency) for name, amount, currency in (
        ("matched", 10_000, "EUR"), ("amount", 5_000, "EUR"), ("currency", 2_000, "EUR"), ("fee", 3_000, "EUR"),
        ("missing", 7_000, "EUR"), ("duplicate", 1_500, "EUR"), ("jpy", 1_000, "JPY"), ("kwd", 12_345, "KWD"),
        ("b2", 4_000, "EUR"), ("b3", 6_000, "EUR"))}
    ids["refund"] = refunded(conn, merchant, ids["matched"], 2_000)
    ids["b3_refund"] = refunded(conn, merchant, ids["b3"], 2_000)
    return ids


def _lines(ids: dict[str, int]) -> list:  # type: ignore[type-arg]
    b1 = [
        line(2, C, 10_000, payment=ids["matched"]),
        line(3, R, -2_000, payment=ids["matched"], operation=ids["refund"]),
        line(4, C, 4_900, payment=ids["amount"]),
        line(5, C, 2_000, payment=ids["currency"], currency="USD"),
        line(6, C, 3_000, payment=ids["fee"], fee=999),
        line(7, C, 1_500, payment=ids["duplicate"]),
        line(8, C, 1_500, payment=ids["duplicate"]),
        line(9, C, 800, payment=None, key="B1:unknown"),
        line(10, C, 1_000, payment=ids["jpy"], currency="JPY"),
        line(11, C, 12_345, payment=ids["kwd"], currency="KWD"),
    ]
    b1[7] = b1[7].__class__(**{**{f: getattr(b1[7], f) for f in b1[7].__dataclass_fields__},
                               "payment_reference": "4242", "gateway_reference": "psp_unknown"})
    b2 = [line(12, C, 4_000, payment=ids["b2"], batch="B2")]
    b3 = [line(13, C, 6_000, payment=ids["b3"], batch="B3"),
          line(14, R, -2_000, payment=ids["b3"], operation=ids["b3_refund"], batch="B3")]
    return [*b1, payout(20, b1), payout(21, b1, currency="JPY"), payout(22, b1, currency="KWD"),
            *b2, payout(23, b2, batch="B2", off_by=1), *b3, payout(24, b3, batch="B3")]


def test_every_outcome_is_found_once_and_nothing_else(engine: Engine) -> None:
    with engine.begin() as conn:
        ids = _planted(conn)
    settlement = source(_lines(ids))
    with engine.begin() as conn:
        result = import_settlement(conn, settlement)
        assert (result.imported_before, result.new_line_count) == (False, len(settlement.lines))
        assert_invariants(conn)
        assert scalar(conn, "SELECT count(*) FROM v_trial_balance_totals WHERE difference_minor <> 0") == 0
    report = _run(engine)
    assert report.counts == {"matched": 7, "amount_mismatch": 1, "currency_mismatch": 1, "fee_mismatch": 1,
                             "missing_from_settlement": 1, "unknown_to_ledger": 1, "duplicate": 1,
                             "payout_mismatch": 1}
    found = {f.outcome: f for f in report.opened}
    assert found["amount_mismatch"].subject == f"capture:{ids['amount']}"
    assert (found["amount_mismatch"].expected_minor, found["amount_mismatch"].settled_minor) == (5_000, 4_900)
    assert found["currency_mismatch"].subject == f"capture:{ids['currency']}"
    assert found["fee_mismatch"].subject == f"capture:{ids['fee']}" and found["fee_mismatch"].settled_minor == 999
    assert found["missing_from_settlement"].subject == f"capture:{ids['missing']}"
    assert found["duplicate"].subject == f"capture:{ids['duplicate']}" and len(found["duplicate"].line_ids) == 2
    assert found["unknown_to_ledger"].subject.startswith("line:")
    assert found["payout_mismatch"].settled_minor == found["payout_mismatch"].expected_minor + 1
    with engine.begin() as conn:
        clearing = dict(conn.execute(text(
            "SELECT b.reference, c.clearing_net_minor FROM v_batch_clearing c JOIN settlement_batches b"
            " ON b.id = c.batch_id WHERE c.currency = 'EUR'")).tuples().all())
        assert clearing["B3"] == 0 and clearing["B2"] == 0  # matched batches net the clearing account to zero
        assert clearing["B1"] != 0
        assert len(list_discrepancies(conn, status="open")) == 7


def test_a_missing_movement_is_not_due_before_the_settlement_delay(engine: Engine) -> None:
    with engine.begin() as conn:
        merchant = new_merchant(conn)
        captured(conn, merchant, 7_000)
    report = _run(engine, as_of=NOW + timedelta(hours=1))
    assert report.counts.get("not_yet_due") == 1 and "missing_from_settlement" not in report.counts


def test_the_same_source_twice_changes_nothing_and_a_restated_line_refuses_the_whole_source(engine: Engine) -> None:
    with engine.begin() as conn:
        ids = _planted(conn)
    lines = _lines(ids)
    with engine.begin() as conn:
        first = import_settlement(conn, source(lines))
    with engine.begin() as conn:
        again = import_settlement(conn, source(lines))
        assert again.imported_before and again.import_id is None and again.new_line_count == 0
        counted = scalar(conn, "SELECT count(*) FROM settlement_lines")
        posted = scalar(conn, "SELECT count(*) FROM ledger_transactions WHERE kind = 'settlement'")
    assert counted == len(lines) and posted == len(first.settlement_transaction_ids)
    overlapping = source(lines[:3], name="part.csv")  # other content, lines known: skipped
    with engine.begin() as conn:
        part = import_settlement(conn, overlapping)
        assert (part.imported_before, part.new_line_count, part.settlement_transaction_ids) == (False, 0, ())
    restated = [lines[0].__class__(**{**{f: getattr(lines[0], f) for f in lines[0].__dataclass_fields__},
                                      "gross_minor": 9_999, "net_minor": 9_999 - lines[0].fee_minor}),
                line(30, C, 123, payment=ids["missing"], batch="B9")]
    with pytest.raises(SettlementConflict, match=r"line 2 .* other gross_minor, net_minor"), engine.begin() as conn:
        import_settlement(conn, source(restated, name="restated.csv"))
    with engine.begin() as conn:
        assert scalar(conn, "SELECT count(*) FROM settlement_lines") == counted  # nothing of it half-imported
        assert scalar(conn, "SELECT count(*) FROM settlement_batches WHERE reference = 'B9'") == 0


def test_discrepancies_are_resolved_once_with_a_history_and_close_when_no_longer_found(engine: Engine) -> None:
    with engine.begin() as conn:
        ids = _planted(conn)
    with engine.begin() as conn:
        import_settlement(conn, source(_lines(ids)))
    first = _run(engine)
    amount = next(f for f in first.opened if f.outcome == "amount_mismatch")
    with engine.begin() as conn:
        row = next(d for d in list_discrepancies(conn) if d["subject"] == amount.subject)
        with pytest.raises(DiscrepancyError, match="needs a note"):
            resolve(conn, row["discrepancy_id"], by="ana@finance", note="  ")
        done = resolve(conn, row["discrepancy_id"], by="ana@finance", note="gateway short-paid; claim 1234 filed")
        assert (done["status"], done["resolved_by"]) == ("resolved", "ana@finance")
        with pytest.raises(DiscrepancyError, match="resolved already"):
            resolve(conn, row["discrepancy_id"], by="bob@finance", note="again")
        with pytest.raises(DiscrepancyError, match="no discrepancy"):
            resolve(conn, 987_654, by="bob@finance", note="x")
        assert [(e["action"], e["actor"]) for e in history(conn, row["discrepancy_id"])] == [
            ("opened", "reconciliation"), ("resolved", "ana@finance")]
    # The missing capture settles late: the next run no longer finds it and closes it; the resolved one stays so.
    missing = next(f for f in first.opened if f.outcome == "missing_from_settlement")
    with engine.begin() as conn:
        import_settlement(conn, source([line(40, C, 7_000, payment=missing.payment_id, batch="B5")], name="late"))
    second = _run(engine)
    assert second.opened == () and second.closed == 1
    with engine.begin() as conn:
        closed = next(d for d in list_discrepancies(conn) if d["subject"] == missing.subject)
        assert closed["status"] == "resolved" and closed["resolved_by"] == "reconciliation"
        assert "no longer found by run" in closed["resolution_note"]
        assert list_discrepancies(conn, kind="amount_mismatch")[0]["resolved_by"] == "ana@finance"


@pytest.mark.parametrize("statement", [
    "UPDATE settlement_lines SET gross_minor = gross_minor + 1",
    "DELETE FROM settlement_lines",
    "DELETE FROM recon_discrepancy_events",
    "UPDATE recon_discrepancy_events SET note = 'rewritten'",
    "DELETE FROM recon_discrepancies",
    "UPDATE recon_discrepancies SET subject = 'other'",
    "UPDATE recon_discrepancies SET status = 'resolved'",  # without who, when and why
])
def test_the_database_refuses_rewriting_the_record(engine: Engine, statement: str) -> None:
    with engine.begin() as conn:
        ids = _planted(conn)
    with engine.begin() as conn:
        import_settlement(conn, source(_lines(ids)))
    _run(engine)
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.execute(text(statement))


def test_a_settlement_transaction_names_a_batch_and_no_payment(engine: Engine) -> None:
    with engine.begin() as conn:
        ids = _planted(conn)
        result = import_settlement(conn, source(_lines(ids)))
        rows = conn.execute(text("SELECT payment_id, settlement_batch_id, settlement_import_id FROM"
                                 " ledger_transactions WHERE kind = 'settlement'")).all()
        assert rows and all(p is None and b is not None and i == result.import_id for p, b, i in rows)
    with pytest.raises(DBAPIError, match="settlement_has_no_payment"), engine.begin() as conn:
        conn.execute(text("INSERT INTO ledger_transactions (payment_id, kind, currency, amount_minor)"
                          " VALUES (:p, 'settlement', 'EUR', 1)"), {"p": ids["matched"]})


def test_the_same_matching_over_the_landed_parquet_files_finds_the_same(engine: Engine, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with engine.begin() as conn:
        ids = _planted(conn)
        import_settlement(conn, source(_lines(ids)))
    landed = land_days(engine, tmp_path, [NOW.date()])
    assert landed[NOW.date().isoformat()][1] == len(_lines(ids))
    with engine.begin() as conn:
        from_files = run_reconciliation(conn, source=ParquetSource(tmp_path), as_of=AS_OF)
        assert from_files.source == f"parquet:{tmp_path.resolve()}"
        assert scalar(conn, "SELECT source FROM recon_runs WHERE id = :r", r=from_files.run_id) == from_files.source
    from_database = _run(engine)
    assert from_files.counts == from_database.counts and from_database.counts["matched"] == 7
    assert land_days(engine, tmp_path, [NOW.date()]) == landed  # landing a day again rewrites it whole


def test_the_parquet_source_names_what_is_missing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FileNotFoundError, match="paysaga recon land"):
        ParquetSource(tmp_path)
