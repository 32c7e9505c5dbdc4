"""Finding executions as the CLI and the console do: by name or ARN, filtered by time, merchant, error and status,
newest first in keyset pages; and the ones that need an engineer (saga.console.triage)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, text

from saga.console.triage import list_needing_attention
from store.executions import find_execution, finish_execution, insert_execution, list_executions, payment_statuses
from tests.integration.store.support import make_merchant, make_payment

MACHINE = "arn:aws:states:eu-west-1:000000000000:express:paysaga"
T0 = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


def _execution(engine: Engine, *, payment_id: int, name: str, started_at: datetime, status: str = "RUNNING",
               error: str | None = None) -> str:
    arn = f"{MACHINE}:{name}"
    with engine.begin() as conn:
        assert insert_execution(conn, execution_arn=arn, payment_id=payment_id, name=name, input={}).applied
        conn.execute(text("UPDATE saga_executions SET started_at = :at WHERE execution_arn = :arn"),
                     {"at": started_at, "arn": arn})
        if status != "RUNNING":
            assert finish_execution(conn, execution_arn=arn, status=status, error=error).applied
    return arn


def test_an_execution_is_found_by_its_name_or_its_arn(engine: Engine) -> None:
    with engine.begin() as conn:
        payment = make_payment(conn, merchant_id=make_merchant(conn), amount_minor=100, currency="EUR")
    arn = _execution(engine, payment_id=payment, name=f"pay-{payment}-01JX", started_at=T0)
    with engine.connect() as conn:
        by_name, by_arn = find_execution(conn, f"pay-{payment}-01JX"), find_execution(conn, arn)
        assert by_name is not None and by_name == by_arn and by_name.execution_arn == arn
        assert find_execution(conn, "pay-0-nope") is None and find_execution(conn, f"{MACHINE}:nope") is None


def test_filters_and_keyset_pages_newest_first(engine: Engine) -> None:
    with engine.begin() as conn:
        shop, other = make_merchant(conn), make_merchant(conn)
        mine = make_payment(conn, merchant_id=shop, amount_minor=100, currency="EUR")
        theirs = make_payment(conn, merchant_id=other, amount_minor=100, currency="EUR")
    # Two executions start at the same instant: the ARN orders them, and no page loses or repeats one.
    arns = [
        _execution(engine, payment_id=mine, name="a-1", started_at=T0, status="SUCCEEDED"),
        _execution(engine, payment_id=mine, name="a-2", started_at=T0 + timedelta(minutes=1), status="FAILED",
                   error="PaymentDeclined"),
        _execution(engine, payment_id=theirs, name="b-1", started_at=T0 + timedelta(minutes=1), status="FAILED",
                   error="States.Timeout"),
        _execution(engine, payment_id=theirs, name="b-2", started_at=T0 + timedelta(minutes=2)),
    ]
    newest_first = [arns[3], arns[2], arns[1], arns[0]]
    with engine.connect() as conn:
        assert [r.execution_arn for r in list_executions(conn)] == newest_first
        pages: list[str] = []
        before = None
        while True:
            page = list_executions(conn, limit=3, before=before)
            pages.extend(r.execution_arn for r in page)
            if len(page) < 3:
                break
            before = (page[-1].started_at, page[-1].execution_arn)
        assert pages == newest_first
        assert [r.execution_arn for r in list_executions(conn, merchant_id=shop)] == [arns[1], arns[0]]
        assert [r.execution_arn for r in list_executions(conn, error="States.Timeout")] == [arns[2]]
        assert [r.execution_arn for r in list_executions(conn, status="FAILED", merchant_id=other)] == [arns[2]]
        window = list_executions(conn, since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=2))
        assert [r.execution_arn for r in window] == [arns[2], arns[1]]  # since included, until excluded
        assert list_executions(conn, merchant_id="mer_none") == []
        assert payment_statuses(conn, payment_ids=[mine, theirs, mine, 1]) == {mine: "created", theirs: "created"}
        assert payment_statuses(conn, payment_ids=[]) == {}

        # The ones to look at: the timeout, not the decline; with their payment's status.
        needing = list_needing_attention(conn)
        assert [(r.execution_arn, status) for r, status in needing] == [(arns[2], "created")]
        assert list_needing_attention(conn, merchant_id=shop) == []
        conn.execute(text("UPDATE payments SET status = 'needs_attention' WHERE id = :id"), {"id": mine})
        assert [r.execution_arn for r, _ in list_needing_attention(conn)] == [arns[2], arns[1]]
        assert [r.execution_arn for r, _ in list_needing_attention(conn, limit=1)] == [arns[2]]
        assert [r.execution_arn for r, _ in list_needing_attention(
            conn, before=(T0 + timedelta(minutes=1), arns[2]))] == [arns[1]]
