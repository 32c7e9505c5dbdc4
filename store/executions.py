"""Records of the saga executions the start handler launched (Express workflows keep no history of their own)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, update
from sqlalchemy.dialects.postgresql import insert

from store.results import Reason, WriteResult
from store.schema import EXECUTION_STATUSES, saga_executions

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


def list_executions(
    conn: Connection, *, status: str | None = None, payment_id: int | None = None, limit: int = 100
) -> list[ExecutionRecord]:
    """Newest first, at most `limit` (<= MAX_LIST)."""
    query = select(saga_executions).order_by(saga_executions.c.started_at.desc()).limit(min(max(limit, 1), MAX_LIST))
    if status is not None:
        query = query.where(saga_executions.c.status == status)
    if payment_id is not None:
        query = query.where(saga_executions.c.payment_id == payment_id)
    return [ExecutionRecord(**dict(row)) for row in conn.execute(query).mappings()]
