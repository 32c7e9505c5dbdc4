"""The double-entry ledger in PostgreSQL: tables, posting API (two-phase transfers), records, finance reports.

All functions take a SQLAlchemy Connection whose transaction the caller owns, are keyword-only and idempotent.
"""

from ledger.chart import Chart, ensure_chart
from ledger.executions import Execution, finish_execution, get_execution, insert_execution, list_executions
from ledger.outbox import OutboxEvent, get_event, insert_event, mark_sent, record_attempt, unsent_events
from ledger.payments import Payment, get_payment, insert_payment, transition_payment
from ledger.posting import post, reserve, reverse, void
from ledger.results import LedgerResult, Reason, TransitionResult, WriteResult

__all__ = [
    "Chart",
    "Execution",
    "LedgerResult",
    "OutboxEvent",
    "Payment",
    "Reason",
    "TransitionResult",
    "WriteResult",
    "ensure_chart",
    "finish_execution",
    "get_event",
    "get_execution",
    "get_payment",
    "insert_event",
    "insert_execution",
    "insert_payment",
    "list_executions",
    "mark_sent",
    "post",
    "record_attempt",
    "reserve",
    "reverse",
    "transition_payment",
    "unsent_events",
    "void",
]
