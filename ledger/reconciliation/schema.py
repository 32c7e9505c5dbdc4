"""The reconciliation's tables (migration 0008 adds them, with the triggers that keep them honest):

- settlement_imports: one row per distinct source imported (a file's bytes, an API listing), by content hash;
- settlement_batches: a gateway's payout batch (Adyen's batch number, Stripe's payout, the sandbox's day);
- settlement_lines: what was settled, one row per line, append-only (only the payment and refund it belongs to may
  be filled in later, once, when the ledger learns of them); unique per gateway and line key;
- recon_runs: every matching run, what it read and what it found;
- recon_discrepancies: one per kind and subject, open -> resolved once (who, when, a note);
- recon_discrepancy_events: their history, written by the database on every change, append-only;
- ledger_landings: which days of the ledger landed where (files locally, Firehose on AWS).
"""

from __future__ import annotations

from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import CHAR, JSONB

from core.gateways import GATEWAY_NAMES
from ledger.reconciliation.lines import LineType
from store.schema import CURRENCY_CHECK, metadata, sql_in, timestamp_column

__all__ = [
    "DISCREPANCY_KINDS", "DISCREPANCY_STATUSES", "LINE_TYPES", "RUN_SCHEDULES", "ledger_landings",
    "recon_discrepancies", "recon_discrepancy_events", "recon_runs", "settlement_batches", "settlement_imports",
    "settlement_lines",
]

LINE_TYPES: tuple[str, ...] = tuple(str(t) for t in LineType)
# What a run can find wrong (DESIGN 8c). A matched line is not a discrepancy.
DISCREPANCY_KINDS: tuple[str, ...] = (
    "amount_mismatch",  # the settled gross differs from the ledger's
    "currency_mismatch",  # settled in another currency than the ledger booked
    "fee_mismatch",  # the gateway's fee differs from its terms (ledger/reconciliation/terms.py)
    "missing_from_settlement",  # the ledger moved it, the gateway has not settled it after its settlement delay
    "unknown_to_ledger",  # settled, but the ledger knows no such movement
    "duplicate",  # settled more than once
    "payout_mismatch",  # a batch's payout differs from the sum of its lines' nets
)
DISCREPANCY_STATUSES: tuple[str, ...] = ("open", "resolved")
# hourly, the aged runs of a settlement date (T+7/14/30 days), and by hand.
RUN_SCHEDULES: tuple[str, ...] = ("manual", "hourly", "t+7", "t+14", "t+30")
_GATEWAY_CHECK = sql_in("gateway", GATEWAY_NAMES)

settlement_imports = Table(
    "settlement_imports",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("gateway", Text, nullable=False),
    Column("source_name", Text, nullable=False),
    Column("content_sha256", Text, nullable=False),
    Column("line_count", Integer, nullable=False),  # lines in the source
    Column("new_line_count", Integer, nullable=False),  # lines this import added (the others were known)
    timestamp_column("imported_at"),
    UniqueConstraint("gateway", "content_sha256", name="uq_settlement_imports_gateway_content"),
    CheckConstraint(_GATEWAY_CHECK, name="gateway"),
    CheckConstraint("content_sha256 ~ '^[0-9a-f]{64}$'", name="sha256_hex"),
    CheckConstraint("new_line_count >= 0 AND new_line_count <= line_count", name="counts"),
)

settlement_batches = Table(
    "settlement_batches",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("gateway", Text, nullable=False),
    Column("reference", Text, nullable=False),
    # The UTC date its lines were booked by (the latest): the T+7/14/30 runs count from it.
    Column("settlement_date", Date, nullable=False),
    timestamp_column("first_imported_at"),
    UniqueConstraint("gateway", "reference", name="uq_settlement_batches_gateway_reference"),
    CheckConstraint(_GATEWAY_CHECK, name="gateway"),
)

settlement_lines = Table(
    "settlement_lines",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("import_id", BigInteger, ForeignKey("settlement_imports.id"), nullable=False),
    Column("batch_id", BigInteger, ForeignKey("settlement_batches.id"), nullable=False, index=True),
    Column("gateway", Text, nullable=False),
    Column("line_key", Text, nullable=False),
    Column("line_number", Integer, nullable=False),
    Column("type", Text, nullable=False),
    Column("currency", CHAR(3), nullable=False),
    Column("gross_minor", BigInteger, nullable=False),
    Column("fee_minor", BigInteger, nullable=False),
    Column("net_minor", BigInteger, nullable=False),
    Column("booked_at", DateTime(timezone=True), nullable=False),
    Column("payment_reference", Text, nullable=True),
    Column("gateway_reference", Text, nullable=True),
    Column("modification_reference", Text, nullable=True),
    Column("operation_reference", Text, nullable=True),
    # What the line belongs to in our books, once known (filled once: a trigger refuses any other change).
    Column("payment_id", BigInteger, ForeignKey("payments.id"), nullable=True, index=True),
    Column("operation_id", BigInteger, ForeignKey("payment_operations.id"), nullable=True),
    Column("raw", JSONB, nullable=False),
    timestamp_column("imported_at"),
    UniqueConstraint("gateway", "line_key", name="uq_settlement_lines_gateway_line_key"),
    CheckConstraint(_GATEWAY_CHECK, name="gateway"),
    CheckConstraint(sql_in("type", LINE_TYPES), name="type"),
    CheckConstraint(CURRENCY_CHECK, name="currency_iso4217"),
    CheckConstraint("net_minor = gross_minor - fee_minor", name="net_is_gross_less_fee"),
    CheckConstraint("type <> 'payout' OR (gross_minor <= 0 AND fee_minor = 0)", name="payout_leaves_balance"),
)

recon_runs = Table(
    "recon_runs",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("schedule", Text, nullable=False),
    Column("as_of", DateTime(timezone=True), nullable=False),
    Column("settlement_date", Date, nullable=True),  # the date an aged run (t+7/14/30) is for
    Column("source", Text, nullable=False),  # "postgresql" or "parquet:<folder>": what the matching read
    Column("counts", JSONB, nullable=False, server_default=text("'{}'::jsonb")),  # outcome -> how many
    Column("opened", Integer, nullable=False, server_default=text("0")),
    Column("closed", Integer, nullable=False, server_default=text("0")),
    timestamp_column("started_at"),
    timestamp_column("finished_at", nullable=True, default=False),
    CheckConstraint(sql_in("schedule", RUN_SCHEDULES), name="schedule"),
    CheckConstraint("(schedule IN ('manual', 'hourly')) = (settlement_date IS NULL)", name="aged_runs_name_a_date"),
)

recon_discrepancies = Table(
    "recon_discrepancies",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("kind", Text, nullable=False),
    Column("gateway", Text, nullable=False),
    # What it is about, stable across runs: "capture:<payment id>", "refund:<refund id>", "line:<line id>",
    # "batch:<batch id>:<currency>", ...
    Column("subject", Text, nullable=False),
    Column("currency", CHAR(3), nullable=True),
    Column("expected_minor", BigInteger, nullable=True),
    Column("settled_minor", BigInteger, nullable=True),
    Column("payment_id", BigInteger, nullable=True),
    Column("operation_id", BigInteger, nullable=True),
    Column("batch_id", BigInteger, ForeignKey("settlement_batches.id"), nullable=True),
    Column("line_ids", ARRAY(BigInteger), nullable=False, server_default=text("'{}'")),
    Column("detail", Text, nullable=False),
    Column("status", Text, nullable=False, server_default=text("'open'")),
    Column("opened_run_id", BigInteger, ForeignKey("recon_runs.id"), nullable=False),
    Column("last_seen_run_id", BigInteger, ForeignKey("recon_runs.id"), nullable=False),
    timestamp_column("opened_at"),
    timestamp_column("resolved_at", nullable=True, default=False),
    Column("resolved_by", Text, nullable=True),
    Column("resolution_note", Text, nullable=True),
    UniqueConstraint("kind", "gateway", "subject", name="uq_recon_discrepancies_kind_gateway_subject"),
    CheckConstraint(sql_in("kind", DISCREPANCY_KINDS), name="kind"),
    CheckConstraint(sql_in("status", DISCREPANCY_STATUSES), name="status"),
    CheckConstraint(_GATEWAY_CHECK, name="gateway"),
    CheckConstraint("(status = 'resolved') = (resolved_at IS NOT NULL AND resolved_by IS NOT NULL"
                    " AND resolution_note IS NOT NULL AND length(btrim(resolution_note)) > 0)",
                    name="resolved_says_who_when_why"),
)
Index("ix_recon_discrepancies_open", recon_discrepancies.c.opened_at, postgresql_where=text("status = 'open'"))

recon_discrepancy_events = Table(
    "recon_discrepancy_events",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("discrepancy_id", BigInteger, ForeignKey("recon_discrepancies.id"), nullable=False, index=True),
    Column("action", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("note", Text, nullable=True),
    Column("run_id", BigInteger, ForeignKey("recon_runs.id"), nullable=True),
    timestamp_column("at"),
    CheckConstraint("action IN ('opened', 'resolved')", name="action"),
)

ledger_landings = Table(
    "ledger_landings",
    metadata,
    Column("sink", Text, primary_key=True),  # "firehose:<stream>" or "folder:<path>"
    Column("day", Date, primary_key=True),
    Column("entries", Integer, nullable=False),
    Column("last_entry_id", BigInteger, nullable=True),
    timestamp_column("landed_at"),
)
