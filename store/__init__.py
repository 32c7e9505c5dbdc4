"""The records that are not the ledger, in PostgreSQL: merchants, payments (their lifecycle and the execution lease),
the outbox and the saga executions. Where a payment row is written: store.payments.

All functions take a SQLAlchemy Connection whose transaction the caller owns, are keyword-only and idempotent.
"""

from store.executions import ExecutionRecord, finish_execution, get_execution, insert_execution, list_executions
from store.outbox import OutboxEvent, get_event, insert_event, mark_sent, record_attempt, unsent_events
from store.payments import Payment, get_payment, insert_payment, transition_payment
from store.results import Reason, TransitionResult, WriteResult

__all__ = [
    "ExecutionRecord",
    "OutboxEvent",
    "Payment",
    "Reason",
    "TransitionResult",
    "WriteResult",
    "finish_execution",
    "get_event",
    "get_execution",
    "get_payment",
    "insert_event",
    "insert_execution",
    "insert_payment",
    "list_executions",
    "mark_sent",
    "record_attempt",
    "transition_payment",
    "unsent_events",
]
