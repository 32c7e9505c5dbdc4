"""The shape of the ledger as it lands in files (Parquet, partitioned by the entry's UTC date, `dt=YYYY-MM-DD`),
written once: the landing code (locally pyarrow into a folder, on AWS Firehose converting JSON to Parquet) writes
these columns, the CDK app declares the same Glue table for Athena, and the matcher's SQL reads them (DuckDB over the
files locally, Athena on AWS).

Standard library only: infra imports this module.
"""

from __future__ import annotations

from typing import Final

__all__ = ["LANDING_COLUMNS", "LANDING_PARTITION", "LANDING_PREFIX", "SETTLEMENT_LANDING_COLUMNS",
           "SETTLEMENT_LANDING_PREFIX"]

# (name, type) in Athena/Glue's type names; bigint amounts are minor units, timestamps UTC.
LANDING_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("entry_id", "bigint"),
    ("transaction_id", "bigint"),
    ("transaction_kind", "string"),
    ("payment_id", "bigint"),  # null for a settlement's transaction
    ("operation_id", "bigint"),  # the refund a refund_* transaction belongs to
    ("settlement_batch_id", "bigint"),  # the batch a settlement transaction posts
    ("account_code", "string"),
    ("account_kind", "string"),
    ("gateway", "string"),  # the account's gateway (clearing, gateway balance, bank, fees), else null
    ("side", "string"),
    ("effect", "string"),
    ("amount_minor", "bigint"),
    ("currency", "string"),
    ("created_at", "timestamp"),
    ("payment_gateway_reference", "string"),  # the payment's id at its gateway
    ("operation_gateway_reference", "string"),  # the refund's id at its gateway
)
# The settlement lines beside them (locally, so the matcher can read both sides from files).
SETTLEMENT_LANDING_COLUMNS: Final[tuple[tuple[str, str], ...]] = (
    ("line_id", "bigint"),
    ("batch_id", "bigint"),
    ("gateway", "string"),
    ("type", "string"),
    ("currency", "string"),
    ("gross_minor", "bigint"),
    ("fee_minor", "bigint"),
    ("net_minor", "bigint"),
    ("booked_at", "timestamp"),
    ("payment_id", "bigint"),
    ("operation_id", "bigint"),
)
LANDING_PARTITION: Final[str] = "dt"  # YYYY-MM-DD of created_at in UTC
LANDING_PREFIX: Final[str] = "ledger-entries/"  # under the landing bucket (AWS) or folder (local)
SETTLEMENT_LANDING_PREFIX: Final[str] = "settlement-lines/"
