"""Records of the saga executions the start handler launched (Express workflows keep no history of their own)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, DateTime, Text, func, literal, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert

from store.results import Reason, WriteResult
from store.schema import EXECUTION_STATUSES, payments, saga_executions

MAX_LIST = 1000


@dataclass(frozen=True, slots=True)
class ExecutionRecord:
    execution_arn: str
    payment_id: int
    name: str
    input: dict[str, Any]
    status: str
    error: str | None
    cause: str | None
    history: list[Any] | dict[str, Any] | None
    started_at: datetime
    stopped_at: datetime | None
    replay_of: str | None


def insert_execution(
    conn: Connection,
    *,
    execution_arn: str,
    payment_id: int,
    name: str,
    input: Mapping[str, Any],  # the column's name, as Step Functions calls it
    replay_of: str | None = None,
) -> WriteResult:
    row = conn.execute(
        insert(saga_executions)
        .values(execution_arn=execution_arn, payment_id=payment_id, name=name, input=dict(input), replay_of=replay_of)
        .on_conflict_do_nothing(index_elements=[saga_executions.c.execution_arn])
        .returning(saga_executions.c.execution_arn)
    ).first()
    return WriteResult(True, Reason.APPLIED) if row is not None else WriteResult(False, Reason.ALREADY_EXISTS)


def finish_execution(
    conn: Connection,
    *,
    execution_arn: str,
    status: str,
    error: str | None = None,
    cause: str | None = None,
    history: list[Any] | dict[str, Any] | None = None,
) -> WriteResult:
    """Record the outcome of a RUNNING execution; ALREADY_APPLIED (nothing written) if it already stopped."""
    if status not in EXECUTION_STATUSES or status == "RUNNING":
        raise ValueError(f"a finished execution's status is one of SUCCEEDED/FAILED/TIMED_OUT/ABORTED, not {status!r}")
    row = conn.execute(
        update(saga_executions)
        .where(saga_executions.c.execution_arn == execution_arn, saga_executions.c.status == "RUNNING")
        .values(status=status, error=error, cause=cause, history=history, stopped_at=func.now())
        .returning(saga_executions.c.execution_arn)
    ).first()
    if row is not None:
        return WriteResult(True, Reason.APPLIED)
    exists = conn.execute(
        select(saga_executions.c.execution_arn).where(saga_executions.c.execution_arn == execution_arn)
    ).first()
    return WriteResult(False, Reason.ALREADY_APPLIED if exists else Reason.NOT_FOUND)


def get_execution(conn: Connection, *, execution_arn: str) -> ExecutionRecord | None:
    row = (
        conn.execute(select(saga_executions).where(saga_executions.c.execution_arn == execution_arn)).mappings().first()
    )
    return None if row is None else ExecutionRecord(**dict(row))


def find_execution(conn: Connection, execution: str) -> ExecutionRecord | None:
    """The execution by its ARN, or by its name (what `executions list` shows: the part of the ARN after the last
    ':'); the newest of that name if several machines ran one."""
    if ":" in execution:
        return get_execution(conn, execution_arn=execution)
    row = conn.execute(
        select(saga_executions)
        .where(saga_executions.c.name == execution)
        .order_by(saga_executions.c.started_at.desc(), saga_executions.c.execution_arn.desc())
        .limit(1)
    ).mappings().first()
    return None if row is None else ExecutionRecord(**dict(row))


def list_executions(
    conn: Connection,
    *,
    status: str | None = None,
    payment_id: int | None = None,
    limit: int = 100,
    since: datetime | None = None,
    until: datetime | None = None,
    merchant_id: str | None = None,
    error: str | None = None,
    before: tuple[datetime, str] | None = None,
) -> list[ExecutionRecord]:
    """Newest first (started_at, then ARN), at most `limit` (<= MAX_LIST). since/until bound started_at (since
    included, until excluded); merchant_id: of that merchant's payments; error: that error name exactly. `before`
    pages on: the (started_at, execution_arn) of the last row of the page before."""
    query = (
        select(saga_executions)
        .order_by(saga_executions.c.started_at.desc(), saga_executions.c.execution_arn.desc())
        .limit(min(max(limit, 1), MAX_LIST))
    )
    if status is not None:
        query = query.where(saga_executions.c.status == status)
    if payment_id is not None:
        query = query.where(saga_executions.c.payment_id == payment_id)
    if since is not None:
        query = query.where(saga_executions.c.started_at >= since)
    if until is not None:
        query = query.where(saga_executions.c.started_at < until)
    if merchant_id is not None:
        query = query.where(saga_executions.c.payment_id.in_(
            select(payments.c.id).where(payments.c.merchant_id == merchant_id)))
    if error is not None:
        query = query.where(saga_executions.c.error == error)
    if before is not None:
        query = query.where(tuple_(saga_executions.c.started_at, saga_executions.c.execution_arn)
                            < tuple_(literal(before[0], DateTime(timezone=True)), literal(before[1], Text)))
    return [ExecutionRecord(**dict(row)) for row in conn.execute(query).mappings()]


def payment_statuses(conn: Connection, *, payment_ids: Iterable[int]) -> dict[int, str]:
    """The status of each of these payments that exists (an execution may be recorded before its payment row)."""
    wanted = sorted(set(payment_ids))
    if not wanted:
        return {}
    rows = conn.execute(select(payments.c.id, payments.c.status).where(payments.c.id.in_(wanted)))
    return {int(row.id): str(row.status) for row in rows}
