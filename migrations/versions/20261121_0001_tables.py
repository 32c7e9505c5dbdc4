"""Tables: merchants, payments, accounts, ledger_transactions, ledger_entries, outbox, saga_executions.

Revision ID: 0001
Revises:
Create Date: 2026-11-21 13:44:29.785910
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('merchants',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('api_key_sha256', sa.LargeBinary(), nullable=False),
    sa.Column('api_key_prefix', sa.Text(), nullable=False),
    sa.Column('max_amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currencies', postgresql.ARRAY(sa.Text()), nullable=False),
    sa.Column('webhook_url', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('key_rotated_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint('max_amount_minor > 0', name=op.f('ck_merchants_max_amount_positive')),
    sa.CheckConstraint('octet_length(api_key_sha256) = 32', name=op.f('ck_merchants_key_hash_is_sha256')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_merchants')),
    sa.UniqueConstraint('api_key_sha256', name=op.f('uq_merchants_api_key_sha256'))
    )
    op.create_table('saga_executions',
    sa.Column('execution_arn', sa.Text(), nullable=False),
    sa.Column('payment_id', sa.BigInteger(), nullable=False),
    sa.Column('name', sa.Text(), nullable=False),
    sa.Column('input', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('status', sa.Text(), server_default=sa.text("'RUNNING'"), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('cause', sa.Text(), nullable=True),
    sa.Column('history', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('started_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('stopped_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('replay_of', sa.Text(), nullable=True),
    sa.CheckConstraint("status IN ('RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED')", name=op.f('ck_saga_executions_status')),
    sa.ForeignKeyConstraint(['replay_of'], ['saga_executions.execution_arn'], name=op.f('fk_saga_executions_replay_of_saga_executions')),
    sa.PrimaryKeyConstraint('execution_arn', name=op.f('pk_saga_executions'))
    )
    op.create_index(op.f('ix_saga_executions_payment_id'), 'saga_executions', ['payment_id'], unique=False)
    op.create_index('ix_saga_executions_status_started_at', 'saga_executions', ['status', 'started_at'], unique=False)
    op.create_table('accounts',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('code', sa.Text(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('currency', sa.CHAR(length=3), nullable=False),
    sa.Column('merchant_id', sa.Text(), nullable=True),
    sa.Column('gateway', sa.Text(), nullable=True),
    sa.Column('normal_side', sa.Text(), nullable=False),
    sa.Column('debits_must_not_exceed_credits', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('credits_must_not_exceed_debits', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('debits_pending', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('debits_posted', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('credits_pending', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('credits_posted', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('version', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f('ck_accounts_currency_iso4217')),
    sa.CheckConstraint("kind IN ('merchant_payable', 'gateway_clearing', 'fees_revenue')", name=op.f('ck_accounts_kind')),
    sa.CheckConstraint("normal_side IN ('debit', 'credit')", name=op.f('ck_accounts_normal_side')),
    sa.CheckConstraint('NOT (debits_must_not_exceed_credits AND credits_must_not_exceed_debits)', name=op.f('ck_accounts_one_limit_flag')),
    sa.CheckConstraint('NOT credits_must_not_exceed_debits OR credits_pending + credits_posted <= debits_posted', name=op.f('ck_accounts_credits_within_debits')),
    sa.CheckConstraint('NOT debits_must_not_exceed_credits OR debits_pending + debits_posted <= credits_posted', name=op.f('ck_accounts_debits_within_credits')),
    sa.CheckConstraint('debits_pending >= 0 AND debits_posted >= 0 AND credits_pending >= 0 AND credits_posted >= 0', name=op.f('ck_accounts_totals_non_negative')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_accounts_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('code', name=op.f('uq_accounts_code')),
    sa.UniqueConstraint('id', 'currency', name='uq_accounts_id_currency')
    )
    op.create_table('payments',
    sa.Column('id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('merchant_id', sa.Text(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.CHAR(length=3), nullable=False),
    sa.Column('captured_amount_minor', sa.BigInteger(), nullable=True),
    sa.Column('capture_mode', sa.Text(), server_default=sa.text("'automatic'"), nullable=False),
    sa.Column('status', sa.Text(), server_default=sa.text("'created'"), nullable=False),
    sa.Column('version', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('gateway', sa.Text(), nullable=True),
    sa.Column('gateway_reference', sa.Text(), nullable=True),
    sa.Column('customer_ref', sa.Text(), nullable=True),
    sa.Column('order_ref', sa.Text(), nullable=True),
    sa.Column('payment_method_token', sa.Text(), nullable=True),
    sa.Column('metadata', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('fraud_score', sa.Integer(), nullable=True),
    sa.Column('failure_code', sa.Text(), nullable=True),
    sa.Column('failure_message', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("capture_mode IN ('automatic', 'manual')", name=op.f('ck_payments_capture_mode')),
    sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f('ck_payments_currency_iso4217')),
    sa.CheckConstraint("status IN ('created', 'validated', 'reserved', 'authorized', 'captured', 'capture_submitted', 'capture_failed', 'committed', 'succeeded', 'rejected', 'released', 'voided', 'refunded', 'failed', 'needs_attention', 'review')", name=op.f('ck_payments_status')),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_payments_amount_positive')),
    sa.CheckConstraint('captured_amount_minor IS NULL OR (captured_amount_minor >= 0 AND captured_amount_minor <= amount_minor)', name=op.f('ck_payments_captured_within_amount')),
    sa.CheckConstraint('version >= 0', name=op.f('ck_payments_version_non_negative')),
    sa.ForeignKeyConstraint(['merchant_id'], ['merchants.id'], name=op.f('fk_payments_merchant_id_merchants')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payments'))
    )
    op.create_index(op.f('ix_payments_merchant_id'), 'payments', ['merchant_id'], unique=False)
    op.create_table('ledger_transactions',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('payment_id', sa.BigInteger(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('pending_transaction_id', sa.BigInteger(), nullable=True),
    sa.Column('reverses_transaction_id', sa.BigInteger(), nullable=True),
    sa.Column('currency', sa.CHAR(length=3), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('fee_minor', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('description', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("(kind = 'reverse') = (reverses_transaction_id IS NOT NULL)", name=op.f('ck_ledger_transactions_reversal_links_post')),
    sa.CheckConstraint("(kind IN ('post', 'void')) = (pending_transaction_id IS NOT NULL)", name=op.f('ck_ledger_transactions_resolution_links_pending')),
    sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f('ck_ledger_transactions_currency_iso4217')),
    sa.CheckConstraint("kind IN ('reserve', 'post', 'void', 'reverse')", name=op.f('ck_ledger_transactions_kind')),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_ledger_transactions_amount_positive')),
    sa.CheckConstraint('fee_minor >= 0 AND fee_minor <= amount_minor', name=op.f('ck_ledger_transactions_fee_within_amount')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_ledger_transactions_payment_id_payments')),
    sa.ForeignKeyConstraint(['pending_transaction_id'], ['ledger_transactions.id'], name=op.f('fk_ledger_transactions_pending_transaction_id_ledger_transactions')),
    sa.ForeignKeyConstraint(['reverses_transaction_id'], ['ledger_transactions.id'], name=op.f('fk_ledger_transactions_reverses_transaction_id_ledger_transactions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_transactions')),
    sa.UniqueConstraint('payment_id', 'kind', name='uq_ledger_transactions_payment_id_kind'),
    sa.UniqueConstraint('pending_transaction_id', name=op.f('uq_ledger_transactions_pending_transaction_id')),
    sa.UniqueConstraint('reverses_transaction_id', name=op.f('uq_ledger_transactions_reverses_transaction_id'))
    )
    op.create_index('uq_ledger_transactions_one_resolution', 'ledger_transactions', ['payment_id'], unique=True, postgresql_where=sa.text("kind IN ('post', 'void')"))
    op.create_table('outbox',
    sa.Column('id', sa.Text(), nullable=False),
    sa.Column('payment_id', sa.BigInteger(), nullable=False),
    sa.Column('event_type', sa.Text(), nullable=False),
    sa.Column('payload', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.CheckConstraint('attempts >= 0', name=op.f('ck_outbox_attempts_non_negative')),
    sa.ForeignKeyConstraint(['payment_id'], ['payments.id'], name=op.f('fk_outbox_payment_id_payments')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('payment_id', 'event_type', name='uq_outbox_payment_id_event_type')
    )
    op.create_index('ix_outbox_unsent', 'outbox', ['created_at'], unique=False, postgresql_where=sa.text('sent_at IS NULL'))
    op.create_table('ledger_entries',
    sa.Column('id', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('transaction_id', sa.BigInteger(), nullable=False),
    sa.Column('account_id', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.CHAR(length=3), nullable=False),
    sa.Column('side', sa.Text(), nullable=False),
    sa.Column('effect', sa.Text(), nullable=False),
    sa.Column('amount_minor', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f('ck_ledger_entries_currency_iso4217')),
    sa.CheckConstraint("effect IN ('pending', 'release', 'post')", name=op.f('ck_ledger_entries_effect')),
    sa.CheckConstraint("side IN ('debit', 'credit')", name=op.f('ck_ledger_entries_side')),
    sa.CheckConstraint('amount_minor > 0', name=op.f('ck_ledger_entries_amount_positive')),
    sa.ForeignKeyConstraint(['account_id', 'currency'], ['accounts.id', 'accounts.currency'], name='fk_ledger_entries_account_currency'),
    sa.ForeignKeyConstraint(['transaction_id'], ['ledger_transactions.id'], name=op.f('fk_ledger_entries_transaction_id_ledger_transactions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entries'))
    )
    op.create_index('ix_ledger_entries_account_id_created_at', 'ledger_entries', ['account_id', 'created_at'], unique=False)
    op.create_index('ix_ledger_entries_created_at', 'ledger_entries', ['created_at'], unique=False)
    op.create_index(op.f('ix_ledger_entries_transaction_id'), 'ledger_entries', ['transaction_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_ledger_entries_transaction_id'), table_name='ledger_entries')
    op.drop_index('ix_ledger_entries_created_at', table_name='ledger_entries')
    op.drop_index('ix_ledger_entries_account_id_created_at', table_name='ledger_entries')
    op.drop_table('ledger_entries')
    op.drop_index('ix_outbox_unsent', table_name='outbox', postgresql_where=sa.text('sent_at IS NULL'))
    op.drop_table('outbox')
    op.drop_index('uq_ledger_transactions_one_resolution', table_name='ledger_transactions', postgresql_where=sa.text("kind IN ('post', 'void')"))
    op.drop_table('ledger_transactions')
    op.drop_index(op.f('ix_payments_merchant_id'), table_name='payments')
    op.drop_table('payments')
    op.drop_table('accounts')
    op.drop_index('ix_saga_executions_status_started_at', table_name='saga_executions')
    op.drop_index(op.f('ix_saga_executions_payment_id'), table_name='saga_executions')
    op.drop_table('saga_executions')
    op.drop_table('merchants')
