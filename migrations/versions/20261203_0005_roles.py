"""The functions' least-privileged role, paysaga_app: per table only the statements the runtime issues.

Every Lambda function connects as a login user that is a member of paysaga_app (on AWS `paysaga_functions`, made by
the deploy function admin.migrate), never as the tables' owner: it cannot alter, disable or drop a trigger, truncate,
create or drop anything, or set session_replication_role (all need ownership or superuser), so the ledger's rules
hold against the functions' own credentials.

What the runtime does to each table (read from store/, ledger/, saga/, steps/; nothing there deletes a row):
- merchants, payments, outbox, saga_executions, gateway_notices, disputes: SELECT, INSERT, UPDATE;
- payment_transitions: SELECT (the payments_guard trigger reads it as the invoking user);
- ledger_transactions, ledger_entries: SELECT, INSERT (append-only);
- accounts: SELECT, INSERT (the chart's get-or-create) and UPDATE of `version` alone: the posting API locks the
  accounts it moves (SELECT ... FOR NO KEY UPDATE needs UPDATE on a column). The totals change only through
  ledger_apply_entries(), which this revision makes SECURITY DEFINER: the app cannot UPDATE a total itself, not even
  by setting the paysaga.ledger_apply flag the totals guard trusts.
- ledger_assert_balanced(bigint): EXECUTE (the balance triggers call it as the invoking user); PUBLIC's is revoked.
- Sequences: none. The identity columns' sequences (accounts, ledger_transactions, ledger_entries) are used by INSERT
  without a privilege of their own.
- Not granted, on purpose: alembic_version (the migrations' bookkeeping), the finance views and balance_at()
  (paysaga_finance reads those; the runtime does not).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen at this revision (core.database_roles names it for the code; tests/unit/local/test_migration_copies.py keeps
# them equal).
APP_ROLE = "paysaga_app"

# Table -> the privileges paysaga_app gets on it (tests/integration/admin/test_roles.py checks the database holds
# exactly these, and that no table is left out unless it is listed there as ungranted on purpose).
TABLE_GRANTS: dict[str, tuple[str, ...]] = {
    "merchants": ("SELECT", "INSERT", "UPDATE"),
    "payments": ("SELECT", "INSERT", "UPDATE"),
    "payment_transitions": ("SELECT",),
    "outbox": ("SELECT", "INSERT", "UPDATE"),
    "saga_executions": ("SELECT", "INSERT", "UPDATE"),
    "gateway_notices": ("SELECT", "INSERT", "UPDATE"),
    "disputes": ("SELECT", "INSERT", "UPDATE"),
    "accounts": ("SELECT", "INSERT"),
    "ledger_transactions": ("SELECT", "INSERT"),
    "ledger_entries": ("SELECT", "INSERT"),
}
# Table -> (privilege, columns): the column-level grants.
COLUMN_GRANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "accounts": ("UPDATE", ("version",)),
}
FUNCTIONS = ("ledger_assert_balanced(bigint)",)
APPLY_ENTRIES = "ledger_apply_entries()"

CREATE_ROLE = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'paysaga_app') THEN
        CREATE ROLE paysaga_app NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;  -- another database's migration created it at the same moment: roles are cluster-wide
END $$;
"""

# Roles are cluster-wide: other databases (e.g. clones of this one) may still hold grants, then the role stays; an
# owner without CREATEROLE (on AWS) leaves it to whoever made it.
DROP_ROLE = """
DO $$
BEGIN
    DROP ROLE IF EXISTS paysaga_app;
EXCEPTION WHEN dependent_objects_still_exist OR insufficient_privilege THEN
    NULL;
END $$;
"""


def upgrade() -> None:
    op.execute(CREATE_ROLE)
    # PostgreSQL 15 no longer lets PUBLIC create in schema public; said here so that no server's default decides it.
    op.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    op.execute(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")
    for table, privileges in TABLE_GRANTS.items():
        op.execute(f"GRANT {', '.join(privileges)} ON TABLE {table} TO {APP_ROLE}")
    for table, (privilege, columns) in COLUMN_GRANTS.items():
        op.execute(f"GRANT {privilege} ({', '.join(columns)}) ON TABLE {table} TO {APP_ROLE}")
    for function in FUNCTIONS:
        op.execute(f"REVOKE EXECUTE ON FUNCTION {function} FROM PUBLIC")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO {APP_ROLE}")
    # The totals trigger updates accounts as the tables' owner, so the app needs no UPDATE on a total.
    op.execute(f"ALTER FUNCTION {APPLY_ENTRIES} SECURITY DEFINER SET search_path = pg_catalog, public")


def downgrade() -> None:
    op.execute(f"ALTER FUNCTION {APPLY_ENTRIES} SECURITY INVOKER RESET search_path")
    for function in FUNCTIONS:
        op.execute(f"REVOKE EXECUTE ON FUNCTION {function} FROM {APP_ROLE}")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO PUBLIC")
    tables = sorted({*TABLE_GRANTS, *COLUMN_GRANTS})
    op.execute(f"REVOKE ALL ON TABLE {', '.join(tables)} FROM {APP_ROLE}")  # column privileges go with it
    op.execute(f"REVOKE USAGE ON SCHEMA public FROM {APP_ROLE}")
    op.execute(DROP_ROLE)
