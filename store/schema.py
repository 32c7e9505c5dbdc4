"""Tables of the records that are not the ledger: merchants, payments (and their lifecycle's moves), the outbox and
the saga executions (SQLAlchemy 2 Core). One MetaData for the whole database: ledger.schema adds its tables to it.

Rules the database enforces (migrations/versions): the payment lifecycle's moves and the execution lease (0003).
Keep this module, ledger.schema and the migrations in agreement (`alembic check` runs in the tests).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
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

from core.gateways import GATEWAY_NAMES
from store.lifecycle import HOLDS_CAPTURE, PAYMENT_STATUSES

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def sql_in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def timestamp_column(name: str, *, nullable: bool = False, default: bool = True) -> Column[datetime]:
    return Column(name, DateTime(timezone=True), nullable=nullable, server_default=func.now() if default else None)


CURRENCY_CHECK = "currency ~ '^[A-Z]{3}$'"
EXECUTION_STATUSES = ("RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
# What happens to a manual-capture authorization its merchant left open until shortly before it would lapse.
EXPIRY_ACTIONS = ("capture", "cancel")
# The operations on a payment after its checkout (migration 0007), and where each stands.
OPERATION_KINDS = ("capture", "cancel", "refund")
OPERATION_STATUSES = ("pending", "succeeded", "failed")

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
    # Where this merchant's payments go; each payment records it at start (payments.gateway).
    Column("gateway", Text, nullable=False),
    # The merchant's policy for its manual-capture authorizations nearing expiry (saga.sync acts on it).
    Column("expiring_authorization_action", Text, nullable=False, server_default=text("'cancel'")),
    timestamp_column("created_at"),
    timestamp_column("key_rotated_at", nullable=True, default=False),
    CheckConstraint(sql_in("gateway", GATEWAY_NAMES), name="gateway"),
    CheckConstraint(sql_in("expiring_authorization_action", EXPIRY_ACTIONS), name="expiring_authorization_action"),
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
    # What refunds not failed (pending or succeeded) hold of the captured amount; maintained by migration 0007's
    # trigger on payment_operations, so the CHECK below bounds refunds whatever the code does.
    Column("refund_reserved_minor", BigInteger, nullable=False, server_default=text("0")),
    Column("lease_holder", Text, nullable=True),
    timestamp_column("lease_expires_at", nullable=True, default=False),
    timestamp_column("created_at"),
    timestamp_column("updated_at"),
    CheckConstraint("amount_minor > 0", name="amount_positive"),
    CheckConstraint(
        "captured_amount_minor IS NULL OR (captured_amount_minor >= 0 AND captured_amount_minor <= amount_minor)",
        name="captured_within_amount",
    ),
    CheckConstraint(CURRENCY_CHECK, name="currency_iso4217"),
    CheckConstraint(sql_in("capture_mode", ("automatic", "manual")), name="capture_mode"),
    CheckConstraint(sql_in("status", PAYMENT_STATUSES), name="status"),
    CheckConstraint("version >= 0", name="version_non_negative"),
    CheckConstraint("lease_token >= 0", name="lease_token_non_negative"),
    CheckConstraint("(lease_holder IS NULL) = (lease_expires_at IS NULL)", name="lease_held_until"),
    CheckConstraint(
        "captured_amount_minor IS NULL OR " + sql_in("status", tuple(sorted(HOLDS_CAPTURE))),
        name="captured_never_failed",
    ),
    CheckConstraint("refund_reserved_minor >= 0 AND refund_reserved_minor <= COALESCE(captured_amount_minor, 0)",
                    name="refunds_within_captured"),
)

# The lifecycle's allowed moves, loaded from store.lifecycle.TRANSITIONS by migration 0003; a trigger on payments
# refuses any status change not listed here.
payment_transitions = Table(
    "payment_transitions",
    metadata,
    Column("from_status", Text, primary_key=True),
    Column("to_status", Text, primary_key=True),
)
outbox = Table(
    "outbox",
    metadata,
    Column("id", Text, primary_key=True),
    Column("payment_id", BigInteger, ForeignKey("payments.id"), nullable=False),
    Column("event_type", Text, nullable=False),
    Column("payload", JSONB, nullable=False),
    timestamp_column("created_at"),
    timestamp_column("sent_at", nullable=True, default=False),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    # The operation (a refund: several per payment) an event tells of; none for the payment's own events.
    Column("operation_id", BigInteger, ForeignKey("payment_operations.id"), nullable=True),
    CheckConstraint("attempts >= 0", name="attempts_non_negative"),
)
# One event of each type per payment, and per operation for an operation's (a replayed step cannot announce twice).
Index("uq_outbox_payment_id_event_type", outbox.c.payment_id, outbox.c.event_type, unique=True,
      postgresql_where=text("operation_id IS NULL"))
Index("uq_outbox_operation_id_event_type", outbox.c.operation_id, outbox.c.event_type, unique=True,
      postgresql_where=text("operation_id IS NOT NULL"))
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
    timestamp_column("started_at"),
    timestamp_column("stopped_at", nullable=True, default=False),
    Column("replay_of", Text, ForeignKey("saga_executions.execution_arn"), nullable=True),
    CheckConstraint(sql_in("status", EXECUTION_STATUSES), name="status"),
)
# Every webhook event a gateway sent us, stored once by (gateway, event_id) before it is applied; an event for a payment
# we do not know yet (or one that arrives before the saga recorded what it refers to) stays unapplied until it can be.
gateway_notices = Table(
    "gateway_notices",
    metadata,
    Column("gateway", Text, primary_key=True),
    Column("event_id", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    # Our payment, once resolved (from the payment id the gateway echoed, or from its reference).
    Column("payment_id", BigInteger, ForeignKey("payments.id"), nullable=True, index=True),
    Column("payment_ref", Text, nullable=True),  # the payment id as the gateway echoed it, unparsed
    Column("gateway_reference", Text, nullable=True),
    Column("operation_reference", Text, nullable=True),
    Column("amount_minor", BigInteger, nullable=True),
    Column("currency", CHAR(3), nullable=True),
    Column("reason", Text, nullable=True),
    timestamp_column("occurred_at", default=False),
    timestamp_column("received_at"),
    timestamp_column("applied_at", nullable=True, default=False),
    Column("apply_attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text, nullable=True),
    Column("payload", JSONB, nullable=False),
    CheckConstraint(sql_in("gateway", GATEWAY_NAMES), name="gateway"),
    CheckConstraint("amount_minor IS NULL OR amount_minor >= 0", name="amount_non_negative"),
    CheckConstraint("currency IS NULL OR " + CURRENCY_CHECK, name="currency_iso4217"),
)
Index("ix_gateway_notices_gateway_reference", gateway_notices.c.gateway, gateway_notices.c.gateway_reference)
Index("ix_gateway_notices_unapplied", gateway_notices.c.received_at, postgresql_where=text("applied_at IS NULL"))

DISPUTE_STATUSES = ("open", "won", "lost")
# A chargeback (dispute) of a captured payment, as the gateway reported it; its money moves in the ledger.
disputes = Table(
    "disputes",
    metadata,
    Column("gateway", Text, primary_key=True),
    Column("reference", Text, primary_key=True),  # Stripe dispute id; Adyen: the chargeback's pspReference
    Column("payment_id", BigInteger, ForeignKey("payments.id"), nullable=False, index=True),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", CHAR(3), nullable=False),
    Column("status", Text, nullable=False, server_default=text("'open'")),
    Column("reason", Text, nullable=True),
    timestamp_column("opened_at"),
    timestamp_column("closed_at", nullable=True, default=False),
    CheckConstraint("amount_minor > 0", name="amount_positive"),
    CheckConstraint(CURRENCY_CHECK, name="currency_iso4217"),
    CheckConstraint(sql_in("status", DISPUTE_STATUSES), name="status"),
    CheckConstraint("(status = 'open') = (closed_at IS NULL)", name="closed_when_decided"),
)

Index("ix_saga_executions_status_started_at", saga_executions.c.status, saga_executions.c.started_at)
# `paysaga executions replay NAME` and the console find an execution by the name `executions list` shows (0009).
Index("ix_saga_executions_name", saga_executions.c.name)

# ---- Merchant webhooks (migration 0006) ----------------------------------------------------------------------------

WEBHOOK_DELIVERY_STATUSES = ("pending", "succeeded", "failed")
# A merchant's endpoint. `secret` signs every request (the service must know it: kept as it is, never logged, shown
# once at creation and at rotation); during a rotation's overlap `previous_secret` signs too, until it expires.
# Removing an endpoint disables it (its deliveries and attempts stay readable).
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Text, primary_key=True),  # we_<ULID>
    Column("merchant_id", Text, ForeignKey("merchants.id"), nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("previous_secret", Text, nullable=True),
    timestamp_column("previous_secret_expires_at", nullable=True, default=False),
    timestamp_column("created_at"),
    timestamp_column("disabled_at", nullable=True, default=False),
    CheckConstraint("(previous_secret IS NULL) = (previous_secret_expires_at IS NULL)", name="previous_secret_expires"),
)
# One event to one endpoint: made once (the unique pair), sent until it succeeds or its attempts run out.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("event_id", Text, ForeignKey("outbox.id"), nullable=False),
    Column("endpoint_id", Text, ForeignKey("webhook_endpoints.id"), nullable=False, index=True),
    Column("status", Text, nullable=False, server_default=text("'pending'")),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    timestamp_column("next_attempt_at"),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    timestamp_column("created_at"),
    timestamp_column("updated_at"),
    UniqueConstraint("event_id", "endpoint_id", name="uq_webhook_deliveries_event_id_endpoint_id"),
    CheckConstraint(sql_in("status", WEBHOOK_DELIVERY_STATUSES), name="status"),
    CheckConstraint("attempts >= 0", name="attempts_non_negative"),
)
# The sender scans pending deliveries by when they are due.
Index("ix_webhook_deliveries_due", webhook_deliveries.c.next_attempt_at, postgresql_where=text("status = 'pending'"))
# Every attempt, appended (never updated): when, what the endpoint answered, how long it took, what went wrong.
webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("delivery_id", BigInteger, ForeignKey("webhook_deliveries.id"), nullable=False, index=True),
    timestamp_column("attempted_at", default=False),
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Integer, nullable=False),
    Column("error", Text, nullable=True),
    CheckConstraint("latency_ms >= 0", name="latency_non_negative"),
)

# ---- Operations after checkout (migration 0007) ----------------------------------------------------------------------

# A capture, cancel or refund a merchant asked for (or the expiry policy started), run by its own state machine. The
# database bounds them (migration 0007): at most one capture or cancel per payment that has not failed (they exclude
# each other), refunds only of a captured payment and never more than its captured amount (payments'
# refunds_within_captured, kept by a trigger), a status that moves once from pending, kind and amount never changed.
payment_operations = Table(
    "payment_operations",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),  # a Snowflake id; a refund's id in the API
    Column("payment_id", BigInteger, ForeignKey("payments.id"), nullable=False, index=True),
    Column("merchant_id", Text, ForeignKey("merchants.id"), nullable=False),
    Column("kind", Text, nullable=False),
    Column("status", Text, nullable=False, server_default=text("'pending'")),
    Column("amount_minor", BigInteger, nullable=True),  # none for a cancel
    Column("currency", CHAR(3), nullable=False),
    Column("reason", Text, nullable=True),
    Column("initiator", Text, nullable=False, server_default=text("'merchant'")),
    Column("gateway_reference", Text, nullable=True),  # the gateway's id of this operation (Stripe re_..., Adyen psp)
    Column("failure_code", Text, nullable=True),
    Column("failure_message", Text, nullable=True),
    timestamp_column("created_at"),
    timestamp_column("updated_at"),
    timestamp_column("completed_at", nullable=True, default=False),
    CheckConstraint(sql_in("kind", OPERATION_KINDS), name="kind"),
    CheckConstraint(sql_in("status", OPERATION_STATUSES), name="status"),
    CheckConstraint(sql_in("initiator", ("merchant", "expiry_policy")), name="initiator"),
    CheckConstraint(CURRENCY_CHECK, name="currency_iso4217"),
    CheckConstraint("(kind = 'cancel') = (amount_minor IS NULL) AND (amount_minor IS NULL OR amount_minor > 0)",
                    name="amount_positive_unless_cancel"),
    CheckConstraint("(status = 'pending') = (completed_at IS NULL)", name="completed_when_decided"),
)
# Capture and cancel exclude each other: one of them per payment, unless it failed.
Index("uq_payment_operations_one_capture_or_cancel", payment_operations.c.payment_id, unique=True,
      postgresql_where=text("kind IN ('capture', 'cancel') AND status <> 'failed'"))
# The sync scans pending operations.
Index("ix_payment_operations_pending", payment_operations.c.updated_at, postgresql_where=text("status = 'pending'"))

# ---- The operations console (migration 0009) -------------------------------------------------------------------------

OPERATOR_ROLES = ("viewer", "operator")  # viewer: reads; operator: reads and replays
REPLAY_AUDIT_ACTIONS = ("requested", "finished")
# Lower-case, so two spellings of one name cannot be two accounts.
OPERATOR_USERNAME_CHECK = "username ~ '^[a-z0-9._@-]{3,64}$'"
# An operator of the console (people, not merchants). Removing one keeps the row (the audit names it) and ends its
# sessions; a name once removed can be added again.
operators = Table(
    "operators",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("username", Text, nullable=False),
    Column("password_hash", Text, nullable=False),  # scrypt$n$r$p$salt$hash (store.operators)
    Column("role", Text, nullable=False),
    timestamp_column("created_at"),
    timestamp_column("removed_at", nullable=True, default=False),
    CheckConstraint(OPERATOR_USERNAME_CHECK, name="username_lower_case"),
    CheckConstraint(sql_in("role", OPERATOR_ROLES), name="role"),
)
# One live account per name.
Index("uq_operators_username_live", operators.c.username, unique=True, postgresql_where=text("removed_at IS NULL"))
# A console session: the cookie carries a random token, the table only its SHA-256 (a leaked table opens nothing).
operator_sessions = Table(
    "operator_sessions",
    metadata,
    Column("token_sha256", LargeBinary, primary_key=True),
    Column("operator_id", BigInteger, ForeignKey("operators.id"), nullable=False, index=True),
    Column("csrf_token", Text, nullable=False),
    timestamp_column("created_at"),
    timestamp_column("last_seen_at"),
    timestamp_column("expires_at", default=False),
    timestamp_column("revoked_at", nullable=True, default=False),
    CheckConstraint("octet_length(token_sha256) = 32", name="token_hash_is_sha256"),
    CheckConstraint("expires_at > created_at", name="expires_after_creation"),
)
# Every replay an operator asked for and how it ended, append-only (migration 0009's triggers refuse changes).
replay_audit = Table(
    "replay_audit",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    timestamp_column("at"),
    Column("operator", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("execution_arn", Text, nullable=False, index=True),
    Column("action", Text, nullable=False),
    Column("new_execution_arn", Text, nullable=True),
    Column("outcome", Text, nullable=True),
    Column("detail", Text, nullable=True),
    CheckConstraint("length(btrim(reason)) > 0", name="reason_given"),
    CheckConstraint("length(btrim(operator)) > 0", name="operator_named"),
    CheckConstraint(sql_in("action", REPLAY_AUDIT_ACTIONS), name="action"),
)
