"""The operations console (issue 17): its operators, their sessions, and the audit of every replay.

What the database holds to, whatever the code does:
- an operator's name is lower case, 3 to 64 of [a-z0-9._@-], one live account per name; its role is viewer or
  operator; removing one keeps the row (the audit names it);
- a session is stored by the SHA-256 of its token only, and expires after it was created;
- executions are found by name too (an index: the CLI and the console take the name `executions list` shows);
- replay_audit is append-only (UPDATE, DELETE and TRUNCATE refused by ledger_refuse_change() of migration 0002); every
  row names who asked and why (a reason that is not blank).

What the runtime does to each table (store/operators.py, store/replay_audit.py; nothing deletes a row):
- operators: SELECT, INSERT, UPDATE (added and removed with `paysaga operators`, as merchants are);
- operator_sessions: SELECT, INSERT, UPDATE;
- replay_audit: SELECT, INSERT.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen at this revision (tests/unit/local/test_migration_copies.py keeps them equal to the code's).
APP_ROLE = "paysaga_app"
_ROLES = "role IN ('viewer', 'operator')"
_ACTIONS = "action IN ('requested', 'finished')"
_USERNAME = "username ~ '^[a-z0-9._@-]{3,64}$'"

# Table -> the privileges paysaga_app gets on it (tests/integration/admin/test_roles.py checks the database holds
# exactly these, with migration 0005's).
TABLE_GRANTS: dict[str, tuple[str, ...]] = {
    "operators": ("SELECT", "INSERT", "UPDATE"),
    "operator_sessions": ("SELECT", "INSERT", "UPDATE"),
    "replay_audit": ("SELECT", "INSERT"),
}

_RULES = """
CREATE TRIGGER replay_audit_append_only BEFORE UPDATE OR DELETE ON replay_audit
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER replay_audit_no_truncate BEFORE TRUNCATE ON replay_audit
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
"""

_DROP_RULES = """
DROP TRIGGER replay_audit_no_truncate ON replay_audit;
DROP TRIGGER replay_audit_append_only ON replay_audit;
"""


def _timestamp(name: str, *, nullable: bool = False, default: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable,
                     server_default=sa.text("now()") if default else None)


def upgrade() -> None:
    op.create_table(
        "operators",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("username", sa.Text(), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        _timestamp("created_at"),
        _timestamp("removed_at", nullable=True, default=False),
        sa.CheckConstraint(_USERNAME, name=op.f("ck_operators_username_lower_case")),
        sa.CheckConstraint(_ROLES, name=op.f("ck_operators_role")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_operators")),
    )
    op.create_index("uq_operators_username_live", "operators", ["username"], unique=True,
                    postgresql_where=sa.text("removed_at IS NULL"))
    op.create_table(
        "operator_sessions",
        sa.Column("token_sha256", sa.LargeBinary(), nullable=False),
        sa.Column("operator_id", sa.BigInteger(), nullable=False),
        sa.Column("csrf_token", sa.Text(), nullable=False),
        _timestamp("created_at"),
        _timestamp("last_seen_at"),
        _timestamp("expires_at", default=False),
        _timestamp("revoked_at", nullable=True, default=False),
        sa.CheckConstraint("octet_length(token_sha256) = 32", name=op.f("ck_operator_sessions_token_hash_is_sha256")),
        sa.CheckConstraint("expires_at > created_at", name=op.f("ck_operator_sessions_expires_after_creation")),
        sa.ForeignKeyConstraint(["operator_id"], ["operators.id"],
                                name=op.f("fk_operator_sessions_operator_id_operators")),
        sa.PrimaryKeyConstraint("token_sha256", name=op.f("pk_operator_sessions")),
    )
    op.create_index(op.f("ix_operator_sessions_operator_id"), "operator_sessions", ["operator_id"])
    op.create_table(
        "replay_audit",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        _timestamp("at"),
        sa.Column("operator", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("execution_arn", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("new_execution_arn", sa.Text(), nullable=True),
        sa.Column("outcome", sa.Text(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.CheckConstraint("length(btrim(reason)) > 0", name=op.f("ck_replay_audit_reason_given")),
        sa.CheckConstraint("length(btrim(operator)) > 0", name=op.f("ck_replay_audit_operator_named")),
        sa.CheckConstraint(_ACTIONS, name=op.f("ck_replay_audit_action")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replay_audit")),
    )
    op.create_index(op.f("ix_replay_audit_execution_arn"), "replay_audit", ["execution_arn"])
    op.create_index("ix_saga_executions_name", "saga_executions", ["name"])
    op.execute(_RULES)
    for table, privileges in TABLE_GRANTS.items():
        op.execute(f"GRANT {', '.join(privileges)} ON TABLE {table} TO {APP_ROLE}")


def downgrade() -> None:
    for table in TABLE_GRANTS:
        op.execute(f"REVOKE ALL ON {table} FROM {APP_ROLE}")
    op.execute(_DROP_RULES)
    op.drop_table("replay_audit")
    op.drop_table("operator_sessions")
    op.drop_index("uq_operators_username_live", table_name="operators")
    op.drop_table("operators")
    op.drop_index("ix_saga_executions_name", table_name="saga_executions")
