"""Tables of the ledger (SQLAlchemy 2 Core): accounts, ledger_transactions, ledger_entries, on the one MetaData of
store.schema (a ledger transaction belongs to a payment).

The rules that must never break (append-only entries, balanced transactions, account totals maintained from
entries, no-negative flags) live in the database itself: migration 0002 (migrations/versions/*_0002_rules.py)
adds the triggers, views, the `balance_at` function and the `paysaga_finance` role on top of these tables.
Keep this module and the migrations in agreement (`alembic check` runs in the tests).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import CHAR

from store.schema import CURRENCY_CHECK, metadata, sql_in, timestamp_column

# disputes: what a gateway took back for an open chargeback; chargeback_losses: what lost ones cost (an expense).
# gateway_balance: what a gateway settled to us and holds until its payout; bank: the account its payouts reach;
# gateway_fees: what the gateways actually charged (an expense), from their settlement reports.
ACCOUNT_KINDS = ("merchant_payable", "gateway_clearing", "fees_revenue", "disputes", "chargeback_losses",
                 "gateway_balance", "bank", "gateway_fees")
# dispute_*: a chargeback opened, won (the money came back) or lost (written off to chargeback losses).
# refund_*: one refund of a captured payment (a payment_operations row), two-phase like the payment: reserved, then
# posted or voided.
# settlement: what one import of a gateway's settlement data brought for one batch and currency (no payment: the
# clearing account's side of many payments at once).
TRANSACTION_KINDS = ("reserve", "post", "void", "reverse", "dispute_opened", "dispute_won", "dispute_lost",
                     "refund_reserve", "refund_post", "refund_void", "settlement")
REFUND_KINDS = ("refund_reserve", "refund_post", "refund_void")
# The kinds that resolve a pending (two-phase) transaction, each exactly one, once.
RESOLUTION_KINDS = ("post", "void", "refund_post", "refund_void")
ENTRY_SIDES = ("debit", "credit")
# pending: adds to *_pending; release: takes back from *_pending; post: adds to *_posted (TigerBeetle's two phases).
ENTRY_EFFECTS = ("pending", "release", "post")

accounts = Table(
    "accounts",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("code", Text, nullable=False, unique=True),
    Column("kind", Text, nullable=False),
    Column("currency", CHAR(3), nullable=False),
    Column("merchant_id", Text, ForeignKey("merchants.id"), nullable=True),
    Column("gateway", Text, nullable=True),
    # Which side increases the balance: assets (clearing) are debit-normal, liabilities and revenue credit-normal.
    Column("normal_side", Text, nullable=False),
    Column("debits_must_not_exceed_credits", Boolean, nullable=False, server_default=text("false")),
    Column("credits_must_not_exceed_debits", Boolean, nullable=False, server_default=text("false")),
    Column("debits_pending", BigInteger, nullable=False, server_default=text("0")),
    Column("debits_posted", BigInteger, nullable=False, server_default=text("0")),
    Column("credits_pending", BigInteger, nullable=False, server_default=text("0")),
    Column("credits_posted", BigInteger, nullable=False, server_default=text("0")),
    Column("version", BigInteger, nullable=False, server_default=text("0")),
    timestamp_column("created_at"),
    # The target of ledger_entries' (account_id, currency) foreign key: an entry's currency is its account's.
    UniqueConstraint("id", "currency", name="uq_accounts_id_currency"),
    CheckConstraint(sql_in("kind", ACCOUNT_KINDS), name="kind"),
    CheckConstraint(sql_in("normal_side", ENTRY_SIDES), name="normal_side"),
    CheckConstraint(CURRENCY_CHECK, name="currency_iso4217"),
    CheckConstraint(
        "debits_pending >= 0 AND debits_posted >= 0 AND credits_pending >= 0 AND credits_posted >= 0",
        name="totals_non_negative",
    ),
    CheckConstraint("NOT (debits_must_not_exceed_credits AND credits_must_not_exceed_debits)", name="one_limit_flag"),
    # TigerBeetle's limits: pending debits count against the balance, pending credits do not yet count for it.
    CheckConstraint(
        "NOT debits_must_not_exceed_credits OR debits_pending + debits_posted <= credits_posted",
        name="debits_within_credits",
    ),
    CheckConstraint(
        "NOT credits_must_not_exceed_debits OR credits_pending + credits_posted <= debits_posted",
        name="credits_within_debits",
    ),
)

ledger_transactions = Table(
    "ledger_transactions",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("payment_id", BigInteger, ForeignKey("payments.id"), nullable=True),  # none for a settlement
    Column("kind", Text, nullable=False),
    # The refund (payment_operations row) a refund_* transaction belongs to; a payment may have several refunds.
    Column("operation_id", BigInteger, ForeignKey("payment_operations.id"), nullable=True),
    # post/void resolve exactly one pending (reserve) transaction, once: UNIQUE makes a second resolution fail.
    Column("pending_transaction_id", BigInteger, ForeignKey("ledger_transactions.id"), nullable=True, unique=True),
    # reverse undoes exactly one post transaction, once.
    Column("reverses_transaction_id", BigInteger, ForeignKey("ledger_transactions.id"), nullable=True, unique=True),
    # A settlement transaction's batch and import (ledger/reconciliation: one per import, batch and currency).
    Column("settlement_batch_id", BigInteger, ForeignKey("settlement_batches.id"), nullable=True),
    Column("settlement_import_id", BigInteger, ForeignKey("settlement_imports.id"), nullable=True),
    Column("currency", CHAR(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("fee_minor", BigInteger, nullable=False, server_default=text("0")),
    Column("description", Text, nullable=True),
    timestamp_column("created_at"),
    CheckConstraint(sql_in("kind", TRANSACTION_KINDS), name="kind"),
    CheckConstraint("(kind = 'settlement') = (payment_id IS NULL)"
                    " AND (kind = 'settlement') = (settlement_batch_id IS NOT NULL)"
                    " AND (kind = 'settlement') = (settlement_import_id IS NOT NULL)",
                    name="settlement_has_no_payment"),
    CheckConstraint(f"({sql_in('kind', REFUND_KINDS)}) = (operation_id IS NOT NULL)", name="refunds_name_operation"),
    CheckConstraint(CURRENCY_CHECK, name="currency_iso4217"),
    CheckConstraint("amount_minor > 0", name="amount_positive"),
    CheckConstraint("fee_minor >= 0 AND fee_minor <= amount_minor", name="fee_within_amount"),
    CheckConstraint(f"({sql_in('kind', RESOLUTION_KINDS)}) = (pending_transaction_id IS NOT NULL)",
                    name="resolution_links_pending"),
    CheckConstraint("(kind = 'reverse') = (reverses_transaction_id IS NOT NULL)", name="reversal_links_post"),
)
# One transaction of each kind per payment (a replayed step cannot post twice), and per refund for a refund's.
Index("uq_ledger_transactions_payment_id_kind", ledger_transactions.c.payment_id, ledger_transactions.c.kind,
      unique=True, postgresql_where=text("operation_id IS NULL"))
Index("uq_ledger_transactions_operation_id_kind", ledger_transactions.c.operation_id, ledger_transactions.c.kind,
      unique=True, postgresql_where=text("operation_id IS NOT NULL"))
# A refund's reservation resolves at most once: a refund cannot hold both a refund_post and a refund_void.
Index("uq_ledger_transactions_one_refund_resolution", ledger_transactions.c.operation_id, unique=True,
      postgresql_where=text("kind IN ('refund_post', 'refund_void')"))
# One settlement transaction per import, batch and currency: an import posted twice cannot post twice.
Index("uq_ledger_transactions_settlement", ledger_transactions.c.settlement_import_id,
      ledger_transactions.c.settlement_batch_id, ledger_transactions.c.currency, unique=True,
      postgresql_where=text("kind = 'settlement'"))
# A reservation resolves at most once: a payment cannot hold both a post and a void.
Index(
    "uq_ledger_transactions_one_resolution",
    ledger_transactions.c.payment_id,
    unique=True,
    postgresql_where=text("kind IN ('post', 'void')"),
)

ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("transaction_id", BigInteger, ForeignKey("ledger_transactions.id"), nullable=False, index=True),
    Column("account_id", BigInteger, nullable=False),
    Column("currency", CHAR(3), nullable=False),
    Column("side", Text, nullable=False),
    Column("effect", Text, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    timestamp_column("created_at"),
    ForeignKeyConstraint(
        ["account_id", "currency"],
        ["accounts.id", "accounts.currency"],
        name="fk_ledger_entries_account_currency",
    ),
    CheckConstraint("amount_minor > 0", name="amount_positive"),
    CheckConstraint(sql_in("side", ENTRY_SIDES), name="side"),
    CheckConstraint(sql_in("effect", ENTRY_EFFECTS), name="effect"),
    CheckConstraint(CURRENCY_CHECK, name="currency_iso4217"),
)
Index("ix_ledger_entries_account_id_created_at", ledger_entries.c.account_id, ledger_entries.c.created_at)
Index("ix_ledger_entries_created_at", ledger_entries.c.created_at)


# The reconciliation's tables share this MetaData (settlement transactions name their batch and import).
import ledger.reconciliation.schema  # noqa: E402, F401
