"""Real gateways: each merchant's gateway, the webhook notices received from gateways, and disputes (chargebacks)
with the ledger accounts and transaction kinds their money moves through.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Frozen at this revision (core.gateways and ledger.schema name them for the code;
# tests/unit/local/test_migration_copies.py keeps them equal while this is the latest migration to write them).
_GATEWAYS = "gateway IN ('sandbox', 'stripe', 'adyen')"
_ACCOUNT_KINDS_BEFORE = "kind IN ('merchant_payable', 'gateway_clearing', 'fees_revenue')"
_ACCOUNT_KINDS = "kind IN ('merchant_payable', 'gateway_clearing', 'fees_revenue', 'disputes', 'chargeback_losses')"
_TX_KINDS_BEFORE = "kind IN ('reserve', 'post', 'void', 'reverse')"
_TX_KINDS = ("kind IN ('reserve', 'post', 'void', 'reverse', 'dispute_opened', 'dispute_won', 'dispute_lost')")
_CURRENCY = "currency ~ '^[A-Z]{3}$'"


def _timestamp(name: str, *, nullable: bool = False, default: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable,
                     server_default=sa.text("now()") if default else None)


def upgrade() -> None:
    # Merchants created before this revision were all served by the sandbox.
    op.add_column("merchants", sa.Column("gateway", sa.Text(), nullable=False, server_default="sandbox"))
    op.alter_column("merchants", "gateway", server_default=None)
    op.create_check_constraint("gateway", "merchants", _GATEWAYS)

    op.create_table(
        "gateway_notices",
        sa.Column("gateway", sa.Text(), nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("payment_id", sa.BigInteger(), nullable=True),
        sa.Column("payment_ref", sa.Text(), nullable=True),
        sa.Column("gateway_reference", sa.Text(), nullable=True),
        sa.Column("operation_reference", sa.Text(), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.CHAR(3), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        _timestamp("occurred_at", default=False),
        _timestamp("received_at"),
        _timestamp("applied_at", nullable=True, default=False),
        sa.Column("apply_attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.CheckConstraint(_GATEWAYS, name=op.f("ck_gateway_notices_gateway")),
        sa.CheckConstraint("amount_minor IS NULL OR amount_minor >= 0", name=op.f("ck_gateway_notices_amount_non_negative")),
        sa.CheckConstraint(f"currency IS NULL OR {_CURRENCY}", name=op.f("ck_gateway_notices_currency_iso4217")),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"], name=op.f("fk_gateway_notices_payment_id_payments")),
        sa.PrimaryKeyConstraint("gateway", "event_id", name=op.f("pk_gateway_notices")),
    )
    op.create_index(op.f("ix_gateway_notices_payment_id"), "gateway_notices", ["payment_id"])
    op.create_index("ix_gateway_notices_gateway_reference", "gateway_notices", ["gateway", "gateway_reference"])
    op.create_index("ix_gateway_notices_unapplied", "gateway_notices", ["received_at"],
                    postgresql_where=sa.text("applied_at IS NULL"))

    op.create_table(
        "disputes",
        sa.Column("gateway", sa.Text(), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("payment_id", sa.BigInteger(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.CHAR(3), nullable=False),
        sa.Column("status", sa.Text(), server_default=sa.text("'open'"), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        _timestamp("opened_at"),
        _timestamp("closed_at", nullable=True, default=False),
        sa.CheckConstraint("amount_minor > 0", name=op.f("ck_disputes_amount_positive")),
        sa.CheckConstraint(_CURRENCY, name=op.f("ck_disputes_currency_iso4217")),
        sa.CheckConstraint("status IN ('open', 'won', 'lost')", name=op.f("ck_disputes_status")),
        sa.CheckConstraint("(status = 'open') = (closed_at IS NULL)", name=op.f("ck_disputes_closed_when_decided")),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"], name=op.f("fk_disputes_payment_id_payments")),
        sa.PrimaryKeyConstraint("gateway", "reference", name=op.f("pk_disputes")),
    )
    op.create_index(op.f("ix_disputes_payment_id"), "disputes", ["payment_id"])

    op.drop_constraint(op.f("ck_accounts_kind"), "accounts", type_="check")
    op.create_check_constraint("kind", "accounts", _ACCOUNT_KINDS)
    op.drop_constraint(op.f("ck_ledger_transactions_kind"), "ledger_transactions", type_="check")
    op.create_check_constraint("kind", "ledger_transactions", _TX_KINDS)


def downgrade() -> None:
    op.drop_constraint(op.f("ck_ledger_transactions_kind"), "ledger_transactions", type_="check")
    op.create_check_constraint("kind", "ledger_transactions", _TX_KINDS_BEFORE)
    op.drop_constraint(op.f("ck_accounts_kind"), "accounts", type_="check")
    op.create_check_constraint("kind", "accounts", _ACCOUNT_KINDS_BEFORE)
    op.drop_table("disputes")
    op.drop_table("gateway_notices")
    op.drop_constraint(op.f("ck_merchants_gateway"), "merchants", type_="check")
    op.drop_column("merchants", "gateway")
