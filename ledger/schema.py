"""Tables of the ledger and the payment records (SQLAlchemy 2 Core).

The rules that must never break (append-only entries, balanced transactions, account totals maintained from
entries, no-negative flags) live in the database itself: migration 0002 (migrations/versions/*_0002_rules.py)
adds the triggers, views, the `balance_at` function and the `paysaga_finance` role on top of these tables.
Keep this module and the migrations in agreement (`alembic check` runs in the tests).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, CHAR, JSONB

from ledger.lifecycle import HOLDS_CAPTURE, PAYMENT_STATUSES

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

EXECUTION_STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
ACCOUNT_KINDS = ("merchant_payable", "gateway_clearing", "fees_revenue")
TRANSACTION_KINDS = ("reserve", "post", "void", "reverse")
ENTRY_SIDES = ("debit", "credit")
# pending: adds to *_pending; release: takes back from *_pending; post: adds to *_posted (TigerBeetle's two phases).
ENTRY_EFFECTS = ("pending", "release", "post")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _timestamp(name: str, *, nullable: bool = False, default: bool = True) -> Column[datetime]:
    return Column(name, DateTime(timezone=True), nullable=nullable, server_default=func.now() if default else None)


CURRENCY_CHECK = "currency ~ '^[A-Z]{3}$'"

merchants = Table(
    "merchants",
    metadata,
    Column("id", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("api_key_sha256", LargeBinary, nullable=False, unique=True),
    Column("api_key_prefix", Text, nullable=False),
    Column("max_amount_minor", BigInteger, nullable=False),
    Column("currencies", ARRAY(Text), nullable=False),
    Column("webhook_url", Text, nullable=True),
    _timestamp("created_at"),
    _timestamp("key_rotated_at", nullable=True, default=False),
    CheckConstraint("max_amount_minor > 0", name="max_amount_positive"),
    CheckConstraint("octet_length(api_key_sha256) = 32", name="key_hash_is_sha256"),
)

payments = Table(
    "payments",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("merchant_id", Text, ForeignKey("merchants.id"), nullable=False, index=True),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", CHAR(3), nullable=False),
    Column("captured_amount_minor", BigInteger, nullable=True),
    Column("capture_mode", Text, nullable=False, server_default=text("'automatic'")),
    Column("status", Text, nullable=False, server_default=text("'created'")),
    Column("version", Integer, nullable=False, server_default=text("0")),
    Column("gateway", Text, nullable=True),
    Column("gateway_reference", Text, nullable=True),
    Column("customer_ref", Text, nullable=True),
    Column("order_ref", Text, nullable=True),
    Column("payment_method_token", Text, nullable=True),
    Column("metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("fraud_score", Integer, nullable=True),
    Column("failure_code", Text, nullable=True),
    Column("failure_message", Text, nullable=True),
    # The execution lease (one execution per payment at a time): a fencing token that only goes up, who holds it,
    # until when (the database's clock). Migration 0003 enforces it with the lifecycle.
    Column("lease_token", BigInteger, nullable=False, server_default=text("0")),
    Column("lease_holder", Text, nullable=True),
    _timestamp("lease_expires_at", nullable=True, default=False),
    _timestamp("created_at"),
    _timestamp("updated_at"),
    CheckConstraint("amount_minor > 0", name="amount_positive"),
    CheckConstraint(
        "captured_amount_minor IS NULL OR (captured_amount_minor >= 0 AND captured_amount_minor <= amount_minor)",
        name="captured_within_amount",
    ),
    CheckConstraint(CURRENCY_CHECK, name="currency_iso4217"),
    CheckConstraint(_in("capture_mode", ("automatic", "manual")), name="capture_mode"),
    CheckConstraint(_in("status", PAYMENT_STATUSES), name="status"),
    CheckConstraint("version >= 0", name="version_non_negative"),
    CheckConstraint("lease_token >= 0", name="lease_token_non_negative"),
    CheckConstraint("(lease_holder IS NULL) = (lease_expires_at IS NULL)", name="lease_held_until"),
    CheckConstraint(
        "captured_amount_minor IS NULL OR " + _in("status", tuple(sorted(HOLDS_CAPTURE))), name="captured_never_failed"
    ),
)

# The lifecycle's allowed moves, loaded from ledger.lifecycle.TRANSITIONS by migration 0003; a trigger on payments
# refuses any status change not listed here.
payment_transitions = Table(
    "payment_transitions",
    metadata,
    Column("from_status", Text, primary_key=True),
    Column("to_status", Text, primary_key=True),
)

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
    _timestamp("created_at"),
    # The target of ledger_entries' (account_id, currency) foreign key: an entry's currency is its account's.
    UniqueConstraint("id", "currency", name="uq_accounts_id_currency"),
    CheckConstraint(_in("kind", ACCOUNT_KINDS), name="kind"),
    CheckConstraint(_in("normal_side", ENTRY_SIDES), name="normal_side"),
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
    Column("payment_id", BigInteger, ForeignKey("payments.id"), nullable=False),
    Column("kind", Text, nullable=False),
    # post/void resolve exactly one pending (reserve) transaction, once: UNIQUE makes a second resolution fail.
    Column("pending_transaction_id", BigInteger, ForeignKey("ledger_transactions.id"), nullable=True, unique=True),
    # reverse undoes exactly one post transaction, once.
    Column("reverses_transaction_id", BigInteger, ForeignKey("ledger_transactions.id"), nullable=True, unique=True),
    Column("currency", CHAR(3), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("fee_minor", BigInteger, nullable=False, server_default=text("0")),
    Column("description", Text, nullable=True),
    _timestamp("created_at"),
    UniqueConstraint("payment_id", "kind", name="uq_ledger_transactions_payment_id_kind"),
    CheckConstraint(_in("kind", TRANSACTION_KINDS), name="kind"),
    CheckConstraint(CURRENCY_CHECK, name="currency_iso4217"),
    CheckConstraint("amount_minor > 0", name="amount_positive"),
    CheckConstraint("fee_minor >= 0 AND fee_minor <= amount_minor", name="fee_within_amount"),
    CheckConstraint(
        "(kind IN ('post', 'void')) = (pending_transaction_id IS NOT NULL)", name="resolution_links_pending"
    ),
    CheckConstraint("(kind = 'reverse') = (reverses_transaction_id IS NOT NULL)", name="reversal_links_post"),
)
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
    _timestamp("created_at"),
    ForeignKeyConstraint(
        ["account_id", "currency"],
        ["accounts.id", "accounts.currency"],
        name="fk_ledger_entries_account_currency",
    ),
    CheckConstraint("amount_minor > 0", name="amount_positive"),
    CheckConstraint(_in("side", ENTRY_SIDES), name="side"),
    CheckConstraint(_in("effect", ENTRY_EFFECTS), name="effect"),
    CheckConstraint(CURRENCY_CHECK, name="currency_iso4217"),
)
Index("ix_ledger_entries_account_id_created_at", ledger_entries.c.account_id, ledger_entries.c.created_at)
Index("ix_ledger_entries_created_at", ledger_entries.c.created_at)

outbox = Table(
    "outbox",
    metadata,
    Column("id", Text, primary_key=True),
    Column("payment_id", BigInteger, ForeignKey("payments.id"), nullable=False),
    Column("event_type", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    _timestamp("created_at"),
    _timestamp("sent_at", nullable=True, default=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    UniqueConstraint("payment_id", "event_type", name="uq_outbox_payment_id_event_type"),
    CheckConstraint("attempts >= 0", name="attempts_non_negative"),
)
# The relay scans unsent rows oldest first.
Index("ix_outbox_unsent", outbox.c.created_at, postgresql_where=text("sent_at IS NULL"))

saga_executions = Table(
    "saga_executions",
    metadata,
    Column("execution_arn", Text, primary_key=True),
    # No foreign key: an execution is recorded before ValidatePayment creates the payment row.
    Column("payment_id", BigInteger, nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("input", JSONB, nullable=False),
    Column("status", Text, nullable=False, server_default=text("'RUNNING'")),
    Column("error", Text, nullable=True),
    Column("cause", Text, nullable=True),
    Column("history", JSONB, nullable=True),
    _timestamp("started_at"),
    _timestamp("stopped_at", nullable=True, default=False),
    Column("replay_of", Text, ForeignKey("saga_executions.execution_arn"), nullable=True),
    CheckConstraint(_in("status", EXECUTION_STATUSES), name="status"),
)
Index("ix_saga_executions_status_started_at", saga_executions.c.status, saga_executions.c.started_at)
