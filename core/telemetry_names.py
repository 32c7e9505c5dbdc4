"""The names the runtime emits and the CDK app alarms on, written once: the metrics namespace, metric names and
dimensions (Powertools Metrics, CloudWatch EMF), and the service names of the Logger/Tracer.

Standard library only: infra imports this module to build alarms and the dashboard on exactly these names.
"""

from __future__ import annotations

from typing import Final

NAMESPACE: Final[str] = "paysaga"

# Dimensions (kept few: each combination is a CloudWatch metric of its own).
DIMENSION_STEP: Final[str] = "step"
DIMENSION_OUTCOME: Final[str] = "outcome"
DIMENSION_ERROR: Final[str] = "error"

# A payment ended: count, dimension outcome (the final lifecycle status it reached: succeeded, review, rejected,
# failed, refunded), counted by the step whose move reached it.
PAYMENTS_FINISHED: Final[str] = "PaymentsFinished"
# A payment ended on a business outcome (a decline, a fraud refusal): count, dimension error (the business error name).
PAYMENTS_DECLINED: Final[str] = "PaymentsDeclined"
# ParkPayment parked a payment for an engineer (needs_attention): count. Declines never count here.
PAYMENTS_PARKED: Final[str] = "PaymentsParked"
# One step invocation's duration: milliseconds, dimension step (the registry's step name).
STEP_LATENCY_MS: Final[str] = "StepLatency"
# A step failed with a transient or unexpected error (not a business outcome): count, dimension step.
STEP_FAULTS: Final[str] = "StepFaults"
# From an outbox row's creation to its publication on the notifications queue: milliseconds.
OUTBOX_LAG_MS: Final[str] = "OutboxLag"
# The start function's whole answer to POST /v1/payments (request in, response out; GET and webhooks are not counted):
# milliseconds, dimension outcome (the HTTP status class: "2xx", "4xx", "5xx").
START_LATENCY_MS: Final[str] = "StartLatency"

# A merchant webhook delivery gave up after its last attempt (saga/notifications/webhooks.py): count.
WEBHOOK_DELIVERIES_FAILED: Final[str] = "WebhookDeliveriesFailed"
# The error log line written when it does (the delivery function's service: SERVICE_WEBHOOK_DELIVERY); an alarm
# (infra) watches for exactly this message, with the delivery, event and endpoint ids beside it.
WEBHOOK_DELIVERY_FAILED_MESSAGE: Final[str] = (
    "webhook delivery failed after its last attempt; the merchant was not told")

# A reconciliation run found discrepancies it had not seen before (ledger/reconciliation): count, dimension
# DIMENSION_KIND (the discrepancy's kind: amount_mismatch, missing_from_settlement, ...). Alarmed on (any > 0).
RECON_DISCREPANCIES_OPENED: Final[str] = "ReconDiscrepanciesOpened"
DIMENSION_KIND: Final[str] = "kind"
# Settlement lines imported (count, dimension DIMENSION_GATEWAY) and runs done (count).
SETTLEMENT_LINES_IMPORTED: Final[str] = "SettlementLinesImported"
DIMENSION_GATEWAY: Final[str] = "gateway"
RECON_RUNS: Final[str] = "ReconRuns"

# Every metric carries exactly the dimensions named beside it above (no `service` dimension: Powertools' default is
# turned off), in the namespace NAMESPACE unless the function's POWERTOOLS_METRICS_NAMESPACE says another.
METRICS_NAMESPACE_ENV: Final[str] = "POWERTOOLS_METRICS_NAMESPACE"

# X-Ray annotations of each invocation's subsegment (`## <step or route>`): searchable with filter expressions,
# e.g. `annotation.payment_id = "7012345678901234567"`. Ids are strings (X-Ray keeps numbers as doubles).
ANNOTATION_PAYMENT_ID: Final[str] = "payment_id"
ANNOTATION_MERCHANT_ID: Final[str] = "merchant_id"
ANNOTATION_SERVICE: Final[str] = "service"  # one of the SERVICE_* below
ANNOTATION_OUTCOME: Final[str] = "outcome"  # the business outcome a step ended with (PaymentDeclined, ...)

SERVICE_START: Final[str] = "paysaga-start"
SERVICE_STEPS: Final[str] = "paysaga-steps"
SERVICE_WEBHOOKS: Final[str] = "paysaga-webhooks"
SERVICE_SYNC: Final[str] = "paysaga-sync"
SERVICE_ADMIN: Final[str] = "paysaga-admin"
SERVICE_NOTIFICATIONS: Final[str] = "paysaga-notifications"  # the outbox relay and the queue consumer
# The merchant webhook deliveries (saga.notifications.webhooks.handler).
SERVICE_WEBHOOK_DELIVERY: Final[str] = "paysaga-webhook-delivery"
# Settlement imports, reconciliation runs and the ledger's landing (saga.reconcile.handler).
SERVICE_RECONCILIATION: Final[str] = "paysaga-reconciliation"
# The operations console (saga.console.handler) and its API Gateway authorizer (saga.console.authorizer).
SERVICE_CONSOLE: Final[str] = "paysaga-console"
