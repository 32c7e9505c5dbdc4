"""The environment every function gets: exactly the variable names core/settings.py reads, plus Powertools' own
(POWERTOOLS_*, read by Powertools and core/observability.py).

The database password never enters the environment: DATABASE_URL carries none, and core.db reads it from the Secrets
Manager secret DATABASE_SECRET_ARN names (through a refreshing cache, so a rotation reaches new connections).
"""

from __future__ import annotations

from typing import Final

from core import telemetry_names
from steps.registry import Workflow

# The functions' login secret ({"username": "paysaga_functions", "password", "host", ...}) the password comes from.
DATABASE_SECRET_ARN: Final[str] = "DATABASE_SECRET_ARN"  # noqa: S105  (a variable name, not a secret)
# DATABASE_URL points at RDS Proxy: core/db.py sends no startup `options` and turns psycopg's prepared statements off
# (a prepared statement pins the client to one database connection, which defeats the proxy's pooling).
DATABASE_PROXY: Final[str] = "DATABASE_PROXY"
POWERTOOLS_METRICS_NAMESPACE: Final[str] = telemetry_names.METRICS_NAMESPACE_ENV
# Where core/settings.py reads each workflow's state machine ARN from: the saga's, then the operations' (the start
# function's routes and the sync start them).
STATE_MACHINE_ARN_VARIABLES: Final[dict[Workflow, str]] = {
    Workflow.PAYMENT: "STATE_MACHINE_ARN",
    Workflow.CAPTURE: "CAPTURE_STATE_MACHINE_ARN",
    Workflow.CANCEL: "CANCEL_STATE_MACHINE_ARN",
    Workflow.REFUND: "REFUND_STATE_MACHINE_ARN",
}
assert set(STATE_MACHINE_ARN_VARIABLES) == set(Workflow)


def runtime_environment(
    *,
    database_url: str,
    database_secret_arn: str,
    redis_url: str,
    idempotency_table: str,
    worker_slots_table: str,
    notifications_queue: str,
    notifications_dlq: str,
    notifications_topic: str,
    event_bus: str,
    gateway: str,
    sandbox_gateway_url: str,
    adyen_merchant_account: str,
    adyen_checkout_url: str,
    gateway_timeout_ms: int,
    idempotency_in_progress_ttl_ms: int,
    execution_lease_ms: int,
    lease_wait_ms: int,
    start_answer_budget_ms: int,
    log_level: str = "INFO",
) -> dict[str, str]:
    environment = {
        "DATABASE_URL": database_url,
        DATABASE_SECRET_ARN: database_secret_arn,
        DATABASE_PROXY: "true",
        "REDIS_URL": redis_url,
        "IDEMPOTENCY_TABLE": idempotency_table,
        "WORKER_SLOTS_TABLE": worker_slots_table,
        "NOTIFICATIONS_QUEUE": notifications_queue,
        "NOTIFICATIONS_DLQ": notifications_dlq,
        "NOTIFICATIONS_TOPIC": notifications_topic,
        "EVENT_BUS": event_bus,
        "PAYMENT_GATEWAY": gateway,
        "GATEWAY_TIMEOUT_MS": str(gateway_timeout_ms),
        "IDEMPOTENCY_IN_PROGRESS_TTL_MS": str(idempotency_in_progress_ttl_ms),
        "EXECUTION_LEASE_MS": str(execution_lease_ms),
        "LEASE_WAIT_MS": str(lease_wait_ms),
        "START_ANSWER_BUDGET_MS": str(start_answer_budget_ms),
        "LOG_LEVEL": log_level,
        POWERTOOLS_METRICS_NAMESPACE: telemetry_names.NAMESPACE,
    }
    optional = {"SANDBOX_GATEWAY_URL": sandbox_gateway_url, "ADYEN_MERCHANT_ACCOUNT": adyen_merchant_account,
                "ADYEN_CHECKOUT_URL": adyen_checkout_url}
    environment.update({name: value for name, value in optional.items() if value})
    return environment


def reconciliation_environment(*, recon_alerts_topic: str, settlement_bucket: str,
                               ledger_landing_stream: str) -> dict[str, str]:
    """What the reconciliation function (saga.reconcile.handler) reads besides the runtime environment: the topic it
    announces new discrepancies on (by name: core/aws_resources.topic_arn), the bucket the settlement reports land in,
    the Firehose stream the ledger lands through. Optional like the others: an empty value is left out (settings then
    keeps its default)."""
    optional = {"RECON_ALERTS_TOPIC": recon_alerts_topic, "SETTLEMENT_BUCKET": settlement_bucket,
                "LEDGER_LANDING_STREAM": ledger_landing_stream}
    return {name: value for name, value in optional.items() if value}
