"""The replay audit on PostgreSQL: rows appended and listed newest first; no one changes or removes them, not even the
tables' owner (the triggers of migration 0009)."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from store.replay_audit import list_audit, record_audit

ARN = "arn:aws:states:eu-west-1:000000000000:express:paysaga:pay-1-01J"
OTHER = "arn:aws:states:eu-west-1:000000000000:express:paysaga:pay-2-01J"


def test_rows_are_appended_and_listed_newest_first(engine: Engine) -> None:
    with engine.begin() as conn:
        first = record_audit(conn, operator="alice", reason="gateway was down", execution_arn=ARN, action="requested")
        second = record_audit(conn, operator="alice", reason="gateway was down", execution_arn=ARN, action="finished",
                              new_execution_arn=OTHER + "-new", outcome="SUCCEEDED", detail="payment 1 is succeeded")
        third = record_audit(conn, operator="cli:bob", reason="retry", execution_arn=OTHER, action="requested")
    assert first < second < third
    with engine.connect() as conn:
        rows = list_audit(conn)
        assert [r.id for r in rows] == [third, second, first]
        assert [r.id for r in list_audit(conn, execution_arn=ARN)] == [second, first]
        assert [r.id for r in list_audit(conn, limit=1)] == [third]
    finished = rows[1]
    assert (finished.operator, finished.reason, finished.action, finished.new_execution_arn, finished.outcome,
            finished.detail) == ("alice", "gateway was down", "finished", OTHER + "-new", "SUCCEEDED",
                                 "payment 1 is succeeded")
    assert finished.at.tzinfo is not None and rows[0].outcome is None


@pytest.mark.parametrize(("operator", "reason", "action", "named"), [
    ("alice", "  ", "requested", "reason"),
    (" ", "why", "requested", "operator"),
    ("alice", "why", "deleted", "action"),
])
def test_who_why_and_what_are_required(engine: Engine, operator: str, reason: str, action: str, named: str) -> None:
    with engine.begin() as conn, pytest.raises(ValueError, match=named):
        record_audit(conn, operator=operator, reason=reason, execution_arn=ARN, action=action)


def test_the_database_refuses_a_blank_reason_itself(engine: Engine) -> None:
    with engine.begin() as conn, pytest.raises(IntegrityError, match="ck_replay_audit_reason_given"):
        conn.execute(text("INSERT INTO replay_audit (operator, reason, execution_arn, action)"
                          " VALUES ('alice', ' ', 'arn', 'requested')"))


@pytest.mark.parametrize("statement", [
    "UPDATE replay_audit SET reason = 'nothing to see'",
    "DELETE FROM replay_audit",
    "TRUNCATE replay_audit",
])
def test_the_audit_is_append_only_even_for_the_owner(engine: Engine, statement: str) -> None:
    with engine.begin() as conn:
        record_audit(conn, operator="alice", reason="why", execution_arn=ARN, action="requested")
    with engine.begin() as conn, pytest.raises(DBAPIError) as refused:
        conn.execute(text(statement))
    assert isinstance(refused.value.orig, psycopg.errors.RestrictViolation)
    assert "replay_audit is append-only" in str(refused.value)
    with engine.connect() as conn:
        assert [r.reason for r in list_audit(conn)] == ["why"]
