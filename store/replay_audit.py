"""The audit of replays (migration 0009): who asked to replay which execution, when and why, and how it ended. The
table is append-only (its triggers refuse UPDATE, DELETE and TRUNCATE): a replay writes a 'requested' row before it
starts and a 'finished' row once it ended or was refused (saga.replay.replay_audited)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, insert, select

from store.schema import REPLAY_AUDIT_ACTIONS, replay_audit

__all__ = ["ACTIONS", "MAX_LIST", "AuditRow", "list_audit", "record_audit"]

ACTIONS = REPLAY_AUDIT_ACTIONS
MAX_LIST = 1000


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    at: datetime
    operator: str
    reason: str
    execution_arn: str
    action: str
    new_execution_arn: str | None
    outcome: str | None
    detail: str | None


def record_audit(
    conn: Connection,
    *,
    operator: str,
    reason: str,
    execution_arn: str,
    action: str,
    new_execution_arn: str | None = None,
    outcome: str | None = None,
    detail: str | None = None,
) -> int:
    """Append one row; its id. A blank operator or reason, or an action not in ACTIONS, is refused (ValueError)."""
    if not operator.strip():
        raise ValueError("operator: say who replays")
    if not reason.strip():
        raise ValueError("reason: say why the execution is replayed")
    if action not in ACTIONS:
        raise ValueError(f"action: {action!r} is not one of {', '.join(ACTIONS)}")
    row_id = conn.execute(
        insert(replay_audit)
        .values(operator=operator, reason=reason, execution_arn=execution_arn, action=action,
                new_execution_arn=new_execution_arn, outcome=outcome, detail=detail)
        .returning(replay_audit.c.id)
    ).scalar_one()
    return int(row_id)


def list_audit(conn: Connection, *, execution_arn: str | None = None, limit: int = 100) -> list[AuditRow]:
    """Newest first (by id: the order rows were written), at most `limit` (<= MAX_LIST); of one execution if named."""
    query = select(replay_audit).order_by(replay_audit.c.id.desc()).limit(min(max(limit, 1), MAX_LIST))
    if execution_arn is not None:
        query = query.where(replay_audit.c.execution_arn == execution_arn)
    return [AuditRow(**dict(row)) for row in conn.execute(query).mappings()]
