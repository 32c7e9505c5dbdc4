"""Reconciliation (DESIGN 8c): settlement imports, batches and lines, runs, discrepancies with their history, the
ledger's landing, and settlement transactions in the ledger.

What the database holds to, whatever the code does:
- settlement lines are append-only: once imported a line never changes, but for naming its payment and refund
  once they are known (NULL -> a value, once); its net is its gross less its fee; a line key is imported once per
  gateway, a source (by content hash) once per gateway;
- a discrepancy's kind, gateway and subject never change; it moves open -> resolved once, saying who, when and why
  (a CHECK); every insert and every resolution writes a row of recon_discrepancy_events (a trigger), which is
  append-only;
- a settlement's ledger transaction has no payment but a batch and an import, one per import, batch and currency;
  it balances like every other (the existing constraint triggers).
- the finance role reads all of it through views.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 17:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen at this revision (tests/unit/local/test_migration_copies.py keeps them equal to the code's).
APP_ROLE = "paysaga_app"
FINANCE_ROLE = "paysaga_finance"
_GATEWAYS = "gateway IN ('sandbox', 'stripe', 'adyen')"
_ACCOUNT_KINDS = ("kind IN ('merchant_payable', 'gateway_clearing', 'fees_revenue', 'disputes', 'chargeback_losses', "
                  "'gateway_balance', 'bank', 'gateway_fees')")
_ACCOUNT_KINDS_BEFORE = ("kind IN ('merchant_payable', 'gateway_clearing', 'fees_revenue', 'disputes', "
                         "'chargeback_losses')")
_TX_KINDS = ("kind IN ('reserve', 'post', 'void', 'reverse', 'dispute_opened', 'dispute_won', 'dispute_lost', "
             "'refund_reserve', 'refund_post', 'refund_void', 'settlement')")
_TX_KINDS_BEFORE = ("kind IN ('reserve', 'post', 'void', 'reverse', 'dispute_opened', 'dispute_won', 'dispute_lost', "
                    "'refund_reserve', 'refund_post', 'refund_void')")
_LINE_TYPES = "type IN ('capture', 'refund', 'chargeback', 'chargeback_reversal', 'fee', 'payout')"
_DISCREPANCY_KINDS = ("kind IN ('amount_mismatch', 'currency_mismatch', 'fee_mismatch', 'missing_from_settlement', "
                      "'unknown_to_ledger', 'duplicate', 'payout_mismatch')")
_DISCREPANCY_STATUSES = "status IN ('open', 'resolved')"
_RUN_SCHEDULES = "schedule IN ('manual', 'hourly', 't+7', 't+14', 't+30')"

TABLE_GRANTS: dict[str, tuple[str, ...]] = {
    "settlement_imports": ("SELECT", "INSERT"),
    "settlement_batches": ("SELECT", "INSERT", "UPDATE"),
    "settlement_lines": ("SELECT", "INSERT"),
    "recon_runs": ("SELECT", "INSERT", "UPDATE"),
    "recon_discrepancies": ("SELECT", "INSERT", "UPDATE"),
    "recon_discrepancy_events": ("SELECT", "INSERT"),
    "ledger_landings": ("SELECT", "INSERT", "UPDATE"),
}
COLUMN_GRANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "settlement_lines": ("UPDATE", ("payment_id", "operation_id")),
}
VIEWS = ("v_settlement_batches", "v_settlement_lines", "v_recon_runs", "v_recon_discrepancies",
         "v_recon_discrepancy_history", "v_batch_clearing")

_RULES = """
CREATE FUNCTION settlement_lines_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'settlement_lines is append-only: DELETE refused' USING ERRCODE = 'restrict_violation';
    END IF;
    IF (to_jsonb(NEW) - 'payment_id' - 'operation_id') <> (to_jsonb(OLD) - 'payment_id' - 'operation_id')
       OR (OLD.payment_id IS NOT NULL AND NEW.payment_id IS DISTINCT FROM OLD.payment_id)
       OR (OLD.operation_id IS NOT NULL AND NEW.operation_id IS DISTINCT FROM OLD.operation_id) THEN
        RAISE EXCEPTION 'settlement line % is append-only: only its payment and refund may be named, once', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER settlement_lines_append_only BEFORE UPDATE OR DELETE ON settlement_lines
    FOR EACH ROW EXECUTE FUNCTION settlement_lines_guard();
CREATE TRIGGER settlement_lines_no_truncate BEFORE TRUNCATE ON settlement_lines
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER settlement_imports_append_only BEFORE UPDATE OR DELETE ON settlement_imports
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER recon_discrepancy_events_append_only BEFORE UPDATE OR DELETE ON recon_discrepancy_events
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER recon_discrepancy_events_no_truncate BEFORE TRUNCATE ON recon_discrepancy_events
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();

CREATE FUNCTION recon_discrepancies_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'discrepancy % cannot be deleted: resolve it', OLD.id USING ERRCODE = 'restrict_violation';
    END IF;
    IF (NEW.id, NEW.kind, NEW.gateway, NEW.subject, NEW.opened_run_id, NEW.opened_at)
       IS DISTINCT FROM (OLD.id, OLD.kind, OLD.gateway, OLD.subject, OLD.opened_run_id, OLD.opened_at) THEN
        RAISE EXCEPTION 'discrepancy %: what it is about never changes', OLD.id USING ERRCODE = 'restrict_violation';
    END IF;
    IF OLD.status = 'resolved' AND (NEW.status, NEW.resolved_at, NEW.resolved_by, NEW.resolution_note)
       IS DISTINCT FROM (OLD.status, OLD.resolved_at, OLD.resolved_by, OLD.resolution_note) THEN
        RAISE EXCEPTION 'discrepancy % was resolved: its resolution never changes', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER recon_discrepancies_guard BEFORE UPDATE OR DELETE ON recon_discrepancies
    FOR EACH ROW EXECUTE FUNCTION recon_discrepancies_guard();

-- AFTER, not BEFORE: an INSERT ... ON CONFLICT DO UPDATE fires BEFORE INSERT triggers for rows that end as updates.
CREATE FUNCTION recon_discrepancies_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status <> 'open' THEN
            RAISE EXCEPTION 'a discrepancy opens open' USING ERRCODE = 'check_violation';
        END IF;
        INSERT INTO recon_discrepancy_events (discrepancy_id, action, actor, note, run_id)
        VALUES (NEW.id, 'opened', 'reconciliation', NEW.detail, NEW.opened_run_id);
    ELSIF OLD.status = 'open' AND NEW.status = 'resolved' THEN
        INSERT INTO recon_discrepancy_events (discrepancy_id, action, actor, note, run_id)
        VALUES (NEW.id, 'resolved', NEW.resolved_by, NEW.resolution_note, NULL);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER recon_discrepancies_history AFTER INSERT OR UPDATE ON recon_discrepancies
    FOR EACH ROW EXECUTE FUNCTION recon_discrepancies_history();
"""

_DROP_RULES = """
DROP TRIGGER recon_discrepancies_history ON recon_discrepancies;
DROP TRIGGER recon_discrepancies_guard ON recon_discrepancies;
DROP FUNCTION recon_discrepancies_history();
DROP FUNCTION recon_discrepancies_guard();
DROP FUNCTION settlement_lines_guard() CASCADE;
"""

_FINANCE_VIEWS = """
CREATE VIEW v_settlement_batches AS
SELECT b.id AS batch_id, b.gateway, b.reference, b.settlement_date, b.first_imported_at,
       count(l.id) AS line_count
  FROM settlement_batches AS b LEFT JOIN settlement_lines AS l ON l.batch_id = b.id
 GROUP BY b.id;

CREATE VIEW v_settlement_lines AS
SELECT l.id AS line_id, l.batch_id, b.reference AS batch_reference, l.gateway, l.line_key, l.line_number, l.type,
       l.currency, l.gross_minor, l.fee_minor, l.net_minor, l.booked_at, l.payment_reference, l.gateway_reference,
       l.modification_reference, l.operation_reference, l.payment_id, l.operation_id, l.import_id,
       i.source_name, l.imported_at
  FROM settlement_lines AS l
  JOIN settlement_batches AS b ON b.id = l.batch_id
  JOIN settlement_imports AS i ON i.id = l.import_id;

CREATE VIEW v_recon_runs AS
SELECT id AS run_id, schedule, as_of, settlement_date, source, counts, opened, closed, started_at, finished_at
  FROM recon_runs;

CREATE VIEW v_recon_discrepancies AS
SELECT id AS discrepancy_id, kind, status, gateway, subject, currency, expected_minor, settled_minor, payment_id,
       operation_id, batch_id, line_ids, detail, opened_run_id, last_seen_run_id, opened_at, resolved_at,
       resolved_by, resolution_note
  FROM recon_discrepancies;

CREATE VIEW v_recon_discrepancy_history AS
SELECT id AS event_id, discrepancy_id, action, actor, note, run_id, at FROM recon_discrepancy_events;

-- Per batch and currency: what the gateway clearing account moved for the batch's lines' payments and refunds in
-- the ledger, against what the batch's settlement posted to it. clearing_net_minor = 0 for a batch that matched.
CREATE VIEW v_batch_clearing AS
WITH booked AS (
    SELECT l.batch_id, l.currency, t.id AS transaction_id
      FROM settlement_lines AS l
      JOIN ledger_transactions AS t
        ON (l.type = 'capture' AND t.kind = 'post' AND t.payment_id = l.payment_id)
        OR (l.type = 'refund' AND l.operation_id IS NOT NULL AND t.kind = 'refund_post' AND t.operation_id = l.operation_id)
        OR (l.type = 'refund' AND l.operation_id IS NULL AND t.kind = 'reverse' AND t.payment_id = l.payment_id)
        OR (l.type = 'chargeback' AND t.kind = 'dispute_opened' AND t.payment_id = l.payment_id)
        OR (l.type = 'chargeback_reversal' AND t.kind = 'dispute_won' AND t.payment_id = l.payment_id)
     WHERE l.type IN ('capture', 'refund', 'chargeback', 'chargeback_reversal')
    UNION
    SELECT t.settlement_batch_id, t.currency, t.id
      FROM ledger_transactions AS t WHERE t.kind = 'settlement'
)
SELECT b.batch_id, b.currency, a.gateway,
       sum(CASE e.side WHEN 'debit' THEN e.amount_minor ELSE -e.amount_minor END)::bigint AS clearing_net_minor
  FROM booked AS b
  JOIN ledger_entries AS e ON e.transaction_id = b.transaction_id AND e.effect = 'post'
  JOIN accounts AS a ON a.id = e.account_id AND a.kind = 'gateway_clearing'
 GROUP BY b.batch_id, b.currency, a.gateway;
"""


def _timestamp(name: str, *, nullable: bool = False, default: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable,
                     server_default=sa.text("now()") if default else None)


def upgrade() -> None:
    op.create_table(
        "settlement_imports",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("gateway", sa.Text(), nullable=False),
        sa.Column("source_name", sa.Text(), nullable=False),
        sa.Column("content_sha256", sa.Text(), nullable=False),
        sa.Column("line_count", sa.Integer(), nullable=False),
        sa.Column("new_line_count", sa.Integer(), nullable=False),
        _timestamp("imported_at"),
        sa.CheckConstraint(_GATEWAYS, name=op.f("ck_settlement_imports_gateway")),
        sa.CheckConstraint("content_sha256 ~ '^[0-9a-f]{64}$'", name=op.f("ck_settlement_imports_sha256_hex")),
        sa.CheckConstraint("new_line_count >= 0 AND new_line_count <= line_count",
                           name=op.f("ck_settlement_imports_counts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_imports")),
        sa.UniqueConstraint("gateway", "content_sha256", name="uq_settlement_imports_gateway_content"),
    )
    op.create_table(
        "settlement_batches",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("gateway", sa.Text(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("settlement_date", sa.Date(), nullable=False),
        _timestamp("first_imported_at"),
        sa.CheckConstraint(_GATEWAYS, name=op.f("ck_settlement_batches_gateway")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_batches")),
        sa.UniqueConstraint("gateway", "reference", name="uq_settlement_batches_gateway_reference"),
    )
    op.create_table(
        "settlement_lines",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("import_id", sa.BigInteger(), nullable=False),
        sa.Column("batch_id", sa.BigInteger(), nullable=False),
        sa.Column("gateway", sa.Text(), nullable=False),
        sa.Column("line_key", sa.Text(), nullable=False),
        sa.Column("line_number", sa.Integer(), nullable=False),
        sa.Column("type", sa.Text(), nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("gross_minor", sa.BigInteger(), nullable=False),
        sa.Column("fee_minor", sa.BigInteger(), nullable=False),
        sa.Column("net_minor", sa.BigInteger(), nullable=False),
        sa.Column("booked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payment_reference", sa.Text(), nullable=True),
        sa.Column("gateway_reference", sa.Text(), nullable=True),
        sa.Column("modification_reference", sa.Text(), nullable=True),
        sa.Column("operation_reference", sa.Text(), nullable=True),
        sa.Column("payment_id", sa.BigInteger(), nullable=True),
        sa.Column("operation_id", sa.BigInteger(), nullable=True),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        _timestamp("imported_at"),
        sa.CheckConstraint(_GATEWAYS, name=op.f("ck_settlement_lines_gateway")),
        sa.CheckConstraint(_LINE_TYPES, name=op.f("ck_settlement_lines_type")),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f("ck_settlement_lines_currency_iso4217")),
        sa.CheckConstraint("net_minor = gross_minor - fee_minor", name=op.f("ck_settlement_lines_net_is_gross_less_fee")),
        sa.CheckConstraint("type <> 'payout' OR (gross_minor <= 0 AND fee_minor = 0)",
                           name=op.f("ck_settlement_lines_payout_leaves_balance")),
        sa.ForeignKeyConstraint(["import_id"], ["settlement_imports.id"],
                                name=op.f("fk_settlement_lines_import_id_settlement_imports")),
        sa.ForeignKeyConstraint(["batch_id"], ["settlement_batches.id"],
                                name=op.f("fk_settlement_lines_batch_id_settlement_batches")),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"], name=op.f("fk_settlement_lines_payment_id_payments")),
        sa.ForeignKeyConstraint(["operation_id"], ["payment_operations.id"],
                                name=op.f("fk_settlement_lines_operation_id_payment_operations")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_lines")),
        sa.UniqueConstraint("gateway", "line_key", name="uq_settlement_lines_gateway_line_key"),
    )
    op.create_index(op.f("ix_settlement_lines_batch_id"), "settlement_lines", ["batch_id"])
    op.create_index(op.f("ix_settlement_lines_payment_id"), "settlement_lines", ["payment_id"])
    op.create_table(
        "recon_runs",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("schedule", sa.Text(), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("settlement_date", sa.Date(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("counts", postgresql.JSONB(astext_type=sa.Text()), nullable=False,
                  server_default=sa.text("'{}'::jsonb")),
        sa.Column("opened", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("closed", sa.Integer(), nullable=False, server_default=sa.text("0")),
        _timestamp("started_at"),
        _timestamp("finished_at", nullable=True, default=False),
        sa.CheckConstraint(_RUN_SCHEDULES, name=op.f("ck_recon_runs_schedule")),
        sa.CheckConstraint("(schedule IN ('manual', 'hourly')) = (settlement_date IS NULL)",
                           name=op.f("ck_recon_runs_aged_runs_name_a_date")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recon_runs")),
    )
    op.create_table(
        "recon_discrepancies",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("gateway", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=True),
        sa.Column("expected_minor", sa.BigInteger(), nullable=True),
        sa.Column("settled_minor", sa.BigInteger(), nullable=True),
        sa.Column("payment_id", sa.BigInteger(), nullable=True),
        sa.Column("operation_id", sa.BigInteger(), nullable=True),
        sa.Column("batch_id", sa.BigInteger(), nullable=True),
        sa.Column("line_ids", postgresql.ARRAY(sa.BigInteger()), nullable=False, server_default=sa.text("'{}'")),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False, server_default=sa.text("'open'")),
        sa.Column("opened_run_id", sa.BigInteger(), nullable=False),
        sa.Column("last_seen_run_id", sa.BigInteger(), nullable=False),
        _timestamp("opened_at"),
        _timestamp("resolved_at", nullable=True, default=False),
        sa.Column("resolved_by", sa.Text(), nullable=True),
        sa.Column("resolution_note", sa.Text(), nullable=True),
        sa.CheckConstraint(_DISCREPANCY_KINDS, name=op.f("ck_recon_discrepancies_kind")),
        sa.CheckConstraint(_DISCREPANCY_STATUSES, name=op.f("ck_recon_discrepancies_status")),
        sa.CheckConstraint(_GATEWAYS, name=op.f("ck_recon_discrepancies_gateway")),
        sa.CheckConstraint("(status = 'resolved') = (resolved_at IS NOT NULL AND resolved_by IS NOT NULL"
                           " AND resolution_note IS NOT NULL AND length(btrim(resolution_note)) > 0)",
                           name=op.f("ck_recon_discrepancies_resolved_says_who_when_why")),
        sa.ForeignKeyConstraint(["batch_id"], ["settlement_batches.id"],
                                name=op.f("fk_recon_discrepancies_batch_id_settlement_batches")),
        sa.ForeignKeyConstraint(["opened_run_id"], ["recon_runs.id"],
                                name=op.f("fk_recon_discrepancies_opened_run_id_recon_runs")),
        sa.ForeignKeyConstraint(["last_seen_run_id"], ["recon_runs.id"],
                                name=op.f("fk_recon_discrepancies_last_seen_run_id_recon_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recon_discrepancies")),
        sa.UniqueConstraint("kind", "gateway", "subject", name="uq_recon_discrepancies_kind_gateway_subject"),
    )
    op.create_index("ix_recon_discrepancies_open", "recon_discrepancies", ["opened_at"],
                    postgresql_where=sa.text("status = 'open'"))
    op.create_table(
        "recon_discrepancy_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("discrepancy_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        _timestamp("at"),
        sa.CheckConstraint("action IN ('opened', 'resolved')", name=op.f("ck_recon_discrepancy_events_action")),
        sa.ForeignKeyConstraint(["discrepancy_id"], ["recon_discrepancies.id"],
                                name=op.f("fk_recon_discrepancy_events_discrepancy_id_recon_discrepancies")),
        sa.ForeignKeyConstraint(["run_id"], ["recon_runs.id"], name=op.f("fk_recon_discrepancy_events_run_id_recon_runs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recon_discrepancy_events")),
    )
    op.create_index(op.f("ix_recon_discrepancy_events_discrepancy_id"), "recon_discrepancy_events", ["discrepancy_id"])
    op.create_table(
        "ledger_landings",
        sa.Column("sink", sa.Text(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("last_entry_id", sa.BigInteger(), nullable=True),
        _timestamp("landed_at"),
        sa.PrimaryKeyConstraint("sink", "day", name=op.f("pk_ledger_landings")),
    )

    op.drop_constraint(op.f("ck_accounts_kind"), "accounts", type_="check")
    op.create_check_constraint("kind", "accounts", _ACCOUNT_KINDS)
    op.add_column("ledger_transactions", sa.Column("settlement_batch_id", sa.BigInteger(), nullable=True))
    op.add_column("ledger_transactions", sa.Column("settlement_import_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(op.f("fk_ledger_transactions_settlement_batch_id_settlement_batches"), "ledger_transactions",
                          "settlement_batches", ["settlement_batch_id"], ["id"])
    op.create_foreign_key(op.f("fk_ledger_transactions_settlement_import_id_settlement_imports"),
                          "ledger_transactions", "settlement_imports", ["settlement_import_id"], ["id"])
    op.alter_column("ledger_transactions", "payment_id", nullable=True)
    op.drop_constraint(op.f("ck_ledger_transactions_kind"), "ledger_transactions", type_="check")
    op.create_check_constraint("kind", "ledger_transactions", _TX_KINDS)
    op.create_check_constraint(
        "settlement_has_no_payment", "ledger_transactions",
        "(kind = 'settlement') = (payment_id IS NULL) AND (kind = 'settlement') = (settlement_batch_id IS NOT NULL)"
        " AND (kind = 'settlement') = (settlement_import_id IS NOT NULL)")
    op.create_index("uq_ledger_transactions_settlement", "ledger_transactions",
                    ["settlement_import_id", "settlement_batch_id", "currency"], unique=True,
                    postgresql_where=sa.text("kind = 'settlement'"))

    op.execute(_RULES)
    op.execute(_FINANCE_VIEWS)
    for table, privileges in TABLE_GRANTS.items():
        op.execute(f"GRANT {', '.join(privileges)} ON {table} TO {APP_ROLE}")
    for table, (privilege, columns) in COLUMN_GRANTS.items():
        op.execute(f"GRANT {privilege} ({', '.join(columns)}) ON {table} TO {APP_ROLE}")
    op.execute(f"GRANT SELECT ON {', '.join(VIEWS)} TO {FINANCE_ROLE}")


def downgrade() -> None:
    op.execute(f"REVOKE ALL ON {', '.join(VIEWS)} FROM {FINANCE_ROLE}")
    for table in TABLE_GRANTS:
        op.execute(f"REVOKE ALL ON {table} FROM {APP_ROLE}")
    op.execute("DROP VIEW " + ", ".join(VIEWS))
    # Entries are append-only: a ledger that holds settlements cannot go back to a schema without them.
    op.execute("DO $$ BEGIN IF EXISTS (SELECT 1 FROM ledger_transactions WHERE kind = 'settlement') THEN "
               "RAISE EXCEPTION 'the ledger holds settlements: revision 0008 cannot be undone without losing them'; "
               "END IF; END $$")
    op.drop_index("uq_ledger_transactions_settlement", table_name="ledger_transactions")
    op.drop_constraint(op.f("ck_ledger_transactions_settlement_has_no_payment"), "ledger_transactions", type_="check")
    op.drop_constraint(op.f("ck_ledger_transactions_kind"), "ledger_transactions", type_="check")
    op.create_check_constraint("kind", "ledger_transactions", _TX_KINDS_BEFORE)
    op.alter_column("ledger_transactions", "payment_id", nullable=False)
    op.drop_constraint(op.f("fk_ledger_transactions_settlement_import_id_settlement_imports"), "ledger_transactions",
                       type_="foreignkey")
    op.drop_constraint(op.f("fk_ledger_transactions_settlement_batch_id_settlement_batches"), "ledger_transactions",
                       type_="foreignkey")
    op.drop_column("ledger_transactions", "settlement_import_id")
    op.drop_column("ledger_transactions", "settlement_batch_id")
    op.execute("DO $$ BEGIN IF EXISTS (SELECT 1 FROM accounts WHERE kind IN ('gateway_balance', 'bank', "
               "'gateway_fees')) THEN RAISE EXCEPTION 'settlement accounts exist: revision 0008 cannot be undone'; "
               "END IF; END $$")
    op.drop_constraint(op.f("ck_accounts_kind"), "accounts", type_="check")
    op.create_check_constraint("kind", "accounts", _ACCOUNT_KINDS_BEFORE)
    op.execute(_DROP_RULES)
    op.drop_table("ledger_landings")
    op.drop_table("recon_discrepancy_events")
    op.drop_table("recon_discrepancies")
    op.drop_table("recon_runs")
    op.drop_table("settlement_lines")
    op.drop_table("settlement_batches")
    op.drop_table("settlement_imports")
