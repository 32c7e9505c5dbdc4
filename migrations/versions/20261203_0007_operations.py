"""Operations after checkout: manual capture, cancel and refunds (DESIGN 8b), bounded by the database.

- `payment_operations`: one row per capture, cancel or refund; its status moves once from pending (a trigger), its
  kind, payment and amount never change. A capture and a cancel of one payment exclude each other (a unique index
  over the ones that did not fail). Capture and cancel need an authorized manual-capture payment, a refund a
  succeeded (captured and committed) one, when the row is written.
- `payments.refund_reserved_minor`: what the payment's refunds that did not fail hold; the trigger adds a refund as
  it is written and gives it back when it fails, and a CHECK keeps it within the captured amount, so concurrent
  refunds can never exceed what was captured, whatever the code above does.
- the `canceled` payment status (final) and its moves; the merchant's policy for authorizations nearing expiry.
- ledger: refund transactions (refund_reserve, refund_post, refund_void) name their refund (`operation_id`); one
  of each kind per payment for the payment's own, per refund for a refund's; a refund's reservation resolves once.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen at this revision (tests/unit/local/test_migration_copies.py keeps them equal to the code's).
APP_ROLE = "paysaga_app"
_PAYMENT_STATUSES = ("status IN ('created', 'validated', 'reserved', 'authorized', 'captured', 'capture_submitted', "
                     "'capture_failed', 'committed', 'succeeded', 'rejected', 'released', 'voided', 'refunded', "
                     "'failed', 'needs_attention', 'review', 'canceled')")
_PAYMENT_STATUSES_BEFORE = _PAYMENT_STATUSES.replace(", 'canceled'", "")
_NEW_TRANSITIONS = (("authorized", "canceled"), ("capture_failed", "canceled"), ("needs_attention", "canceled"))
_EXPIRY_ACTIONS = "expiring_authorization_action IN ('capture', 'cancel')"
_KINDS = "kind IN ('capture', 'cancel', 'refund')"
_STATUSES = "status IN ('pending', 'succeeded', 'failed')"
_TX_KINDS = ("kind IN ('reserve', 'post', 'void', 'reverse', 'dispute_opened', 'dispute_won', 'dispute_lost', "
             "'refund_reserve', 'refund_post', 'refund_void')")
_TX_KINDS_BEFORE = ("kind IN ('reserve', 'post', 'void', 'reverse', 'dispute_opened', 'dispute_won', "
                    "'dispute_lost')")
_REFUND_KINDS = "kind IN ('refund_reserve', 'refund_post', 'refund_void')"
_RESOLUTION_KINDS = "kind IN ('post', 'void', 'refund_post', 'refund_void')"

TABLE_GRANTS: dict[str, tuple[str, ...]] = {
    "payment_operations": ("SELECT", "INSERT", "UPDATE"),
}

_OPERATION_RULES = """
CREATE FUNCTION payment_operations_admit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    paid payments%ROWTYPE;
BEGIN
    SELECT * INTO paid FROM payments WHERE id = NEW.payment_id FOR NO KEY UPDATE;
    IF NEW.merchant_id <> paid.merchant_id OR NEW.currency <> paid.currency THEN
        RAISE EXCEPTION 'operation %: merchant or currency is not payment %''s', NEW.id, NEW.payment_id
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.status <> 'pending' THEN
        RAISE EXCEPTION 'operation %: an operation is written pending', NEW.id USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.kind IN ('capture', 'cancel')
       AND NOT (paid.status = 'authorized' AND paid.capture_mode = 'manual') THEN
        RAISE EXCEPTION 'operation %: % needs an authorized manual-capture payment; payment % is % (%)',
            NEW.id, NEW.kind, paid.id, paid.status, paid.capture_mode USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.kind = 'capture' AND NEW.amount_minor > paid.amount_minor THEN
        RAISE EXCEPTION 'operation %: capture of % exceeds the authorized %', NEW.id, NEW.amount_minor,
            paid.amount_minor USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.kind = 'refund' THEN
        IF paid.status <> 'succeeded' THEN
            RAISE EXCEPTION 'operation %: a refund needs a succeeded payment; payment % is %', NEW.id, paid.id,
                paid.status USING ERRCODE = 'check_violation';
        END IF;
        -- The CHECK refunds_within_captured refuses this UPDATE when the refunds would exceed the capture.
        UPDATE payments SET refund_reserved_minor = refund_reserved_minor + NEW.amount_minor
         WHERE id = NEW.payment_id;
    END IF;
    RETURN NEW;
END $$;

CREATE FUNCTION payment_operations_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF (NEW.id, NEW.payment_id, NEW.merchant_id, NEW.kind, NEW.currency, NEW.initiator)
       IS DISTINCT FROM (OLD.id, OLD.payment_id, OLD.merchant_id, OLD.kind, OLD.currency, OLD.initiator)
       OR NEW.amount_minor IS DISTINCT FROM OLD.amount_minor THEN
        RAISE EXCEPTION 'operation %: what an operation is never changes', OLD.id USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.status <> 'pending' AND NEW.status IS DISTINCT FROM OLD.status THEN
        RAISE EXCEPTION 'operation %: % is final', OLD.id, OLD.status USING ERRCODE = 'check_violation';
    END IF;
    IF OLD.kind = 'refund' AND OLD.status = 'pending' AND NEW.status = 'failed' THEN
        UPDATE payments SET refund_reserved_minor = refund_reserved_minor - OLD.amount_minor
         WHERE id = OLD.payment_id;
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER payment_operations_admit BEFORE INSERT ON payment_operations
    FOR EACH ROW EXECUTE FUNCTION payment_operations_admit();
CREATE TRIGGER payment_operations_guard BEFORE UPDATE ON payment_operations
    FOR EACH ROW EXECUTE FUNCTION payment_operations_guard();
"""

_DROP_OPERATION_RULES = """
DROP TRIGGER IF EXISTS payment_operations_guard ON payment_operations;
DROP TRIGGER IF EXISTS payment_operations_admit ON payment_operations;
DROP FUNCTION IF EXISTS payment_operations_guard();
DROP FUNCTION IF EXISTS payment_operations_admit();
"""


def _timestamp(name: str, *, nullable: bool = False, default: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable,
                     server_default=sa.text("now()") if default else None)


def upgrade() -> None:
    op.add_column("merchants", sa.Column("expiring_authorization_action", sa.Text(), nullable=False,
                                         server_default=sa.text("'cancel'")))
    op.create_check_constraint("expiring_authorization_action", "merchants", _EXPIRY_ACTIONS)

    op.drop_constraint(op.f("ck_payments_status"), "payments", type_="check")
    op.create_check_constraint("status", "payments", _PAYMENT_STATUSES)
    transitions = sa.table("payment_transitions", sa.column("from_status", sa.Text), sa.column("to_status", sa.Text))
    op.bulk_insert(transitions, [{"from_status": a, "to_status": b} for a, b in _NEW_TRANSITIONS])
    op.add_column("payments", sa.Column("refund_reserved_minor", sa.BigInteger(), nullable=False,
                                        server_default=sa.text("0")))
    op.create_check_constraint(
        "refunds_within_captured", "payments",
        "refund_reserved_minor >= 0 AND refund_reserved_minor <= COALESCE(captured_amount_minor, 0)")

    op.create_table(
        "payment_operations",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("payment_id", sa.BigInteger(), nullable=False),
        sa.Column("merchant_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False, server_default=sa.text("'pending'")),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("initiator", sa.Text(), nullable=False, server_default=sa.text("'merchant'")),
        sa.Column("gateway_reference", sa.Text(), nullable=True),
        sa.Column("failure_code", sa.Text(), nullable=True),
        sa.Column("failure_message", sa.Text(), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
        _timestamp("completed_at", nullable=True, default=False),
        sa.CheckConstraint(_KINDS, name=op.f("ck_payment_operations_kind")),
        sa.CheckConstraint(_STATUSES, name=op.f("ck_payment_operations_status")),
        sa.CheckConstraint("initiator IN ('merchant', 'expiry_policy')", name=op.f("ck_payment_operations_initiator")),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f("ck_payment_operations_currency_iso4217")),
        sa.CheckConstraint("(kind = 'cancel') = (amount_minor IS NULL) AND (amount_minor IS NULL OR amount_minor > 0)",
                           name=op.f("ck_payment_operations_amount_positive_unless_cancel")),
        sa.CheckConstraint("(status = 'pending') = (completed_at IS NULL)",
                           name=op.f("ck_payment_operations_completed_when_decided")),
        sa.ForeignKeyConstraint(["merchant_id"], ["merchants.id"],
                                name=op.f("fk_payment_operations_merchant_id_merchants")),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"],
                                name=op.f("fk_payment_operations_payment_id_payments")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_operations")),
    )
    op.create_index(op.f("ix_payment_operations_payment_id"), "payment_operations", ["payment_id"])
    op.create_index("uq_payment_operations_one_capture_or_cancel", "payment_operations", ["payment_id"], unique=True,
                    postgresql_where=sa.text("kind IN ('capture', 'cancel') AND status <> 'failed'"))
    op.create_index("ix_payment_operations_pending", "payment_operations", ["updated_at"],
                    postgresql_where=sa.text("status = 'pending'"))
    op.execute(_OPERATION_RULES)

    op.add_column("ledger_transactions", sa.Column("operation_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(op.f("fk_ledger_transactions_operation_id_payment_operations"), "ledger_transactions",
                          "payment_operations", ["operation_id"], ["id"])
    op.drop_constraint(op.f("ck_ledger_transactions_kind"), "ledger_transactions", type_="check")
    op.create_check_constraint("kind", "ledger_transactions", _TX_KINDS)
    op.create_check_constraint("refunds_name_operation", "ledger_transactions",
                               f"({_REFUND_KINDS}) = (operation_id IS NOT NULL)")
    op.drop_constraint(op.f("ck_ledger_transactions_resolution_links_pending"), "ledger_transactions", type_="check")
    op.create_check_constraint("resolution_links_pending", "ledger_transactions",
                               f"({_RESOLUTION_KINDS}) = (pending_transaction_id IS NOT NULL)")
    op.drop_constraint("uq_ledger_transactions_payment_id_kind", "ledger_transactions", type_="unique")
    op.create_index("uq_ledger_transactions_payment_id_kind", "ledger_transactions", ["payment_id", "kind"],
                    unique=True, postgresql_where=sa.text("operation_id IS NULL"))
    op.create_index("uq_ledger_transactions_operation_id_kind", "ledger_transactions", ["operation_id", "kind"],
                    unique=True, postgresql_where=sa.text("operation_id IS NOT NULL"))
    op.create_index("uq_ledger_transactions_one_refund_resolution", "ledger_transactions", ["operation_id"],
                    unique=True, postgresql_where=sa.text("kind IN ('refund_post', 'refund_void')"))

    op.add_column("outbox", sa.Column("operation_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(op.f("fk_outbox_operation_id_payment_operations"), "outbox", "payment_operations",
                          ["operation_id"], ["id"])
    op.drop_constraint("uq_outbox_payment_id_event_type", "outbox", type_="unique")
    op.create_index("uq_outbox_payment_id_event_type", "outbox", ["payment_id", "event_type"], unique=True,
                    postgresql_where=sa.text("operation_id IS NULL"))
    op.create_index("uq_outbox_operation_id_event_type", "outbox", ["operation_id", "event_type"], unique=True,
                    postgresql_where=sa.text("operation_id IS NOT NULL"))

    for table, privileges in TABLE_GRANTS.items():
        op.execute(f"GRANT {', '.join(privileges)} ON {table} TO {APP_ROLE}")


def downgrade() -> None:
    for table in TABLE_GRANTS:
        op.execute(f"REVOKE ALL ON {table} FROM {APP_ROLE}")
    op.drop_index("uq_outbox_operation_id_event_type", table_name="outbox")
    op.drop_index("uq_outbox_payment_id_event_type", table_name="outbox")
    op.execute("DELETE FROM outbox WHERE operation_id IS NOT NULL")
    op.create_unique_constraint("uq_outbox_payment_id_event_type", "outbox", ["payment_id", "event_type"])
    op.drop_constraint(op.f("fk_outbox_operation_id_payment_operations"), "outbox", type_="foreignkey")
    op.drop_column("outbox", "operation_id")
    op.drop_index("uq_ledger_transactions_one_refund_resolution", table_name="ledger_transactions")
    op.drop_index("uq_ledger_transactions_operation_id_kind", table_name="ledger_transactions")
    op.drop_index("uq_ledger_transactions_payment_id_kind", table_name="ledger_transactions")
    # Entries are append-only: a ledger that holds refunds cannot go back to a schema without them.
    op.execute("DO $$ BEGIN IF EXISTS (SELECT 1 FROM ledger_transactions WHERE operation_id IS NOT NULL) THEN "
               "RAISE EXCEPTION 'the ledger holds refunds: revision 0007 cannot be undone without losing them'; "
               "END IF; END $$")
    op.create_unique_constraint("uq_ledger_transactions_payment_id_kind", "ledger_transactions", ["payment_id", "kind"])
    op.drop_constraint(op.f("ck_ledger_transactions_resolution_links_pending"), "ledger_transactions", type_="check")
    op.create_check_constraint("resolution_links_pending", "ledger_transactions",
                               "(kind IN ('post', 'void')) = (pending_transaction_id IS NOT NULL)")
    op.drop_constraint(op.f("ck_ledger_transactions_refunds_name_operation"), "ledger_transactions", type_="check")
    op.drop_constraint(op.f("ck_ledger_transactions_kind"), "ledger_transactions", type_="check")
    op.create_check_constraint("kind", "ledger_transactions", _TX_KINDS_BEFORE)
    op.drop_constraint(op.f("fk_ledger_transactions_operation_id_payment_operations"), "ledger_transactions",
                       type_="foreignkey")
    op.drop_column("ledger_transactions", "operation_id")
    op.execute(_DROP_OPERATION_RULES)
    op.drop_table("payment_operations")
    op.drop_constraint(op.f("ck_payments_refunds_within_captured"), "payments", type_="check")
    op.drop_column("payments", "refund_reserved_minor")
    op.execute("DELETE FROM payment_transitions WHERE to_status = 'canceled'")
    op.drop_constraint(op.f("ck_payments_status"), "payments", type_="check")
    op.create_check_constraint("status", "payments", _PAYMENT_STATUSES_BEFORE)
    op.drop_constraint(op.f("ck_merchants_expiring_authorization_action"), "merchants", type_="check")
    op.drop_column("merchants", "expiring_authorization_action")
