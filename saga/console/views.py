"""What each console page shows, gathered once for the HTML page and its JSON twin: plain data, no markup."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from saga.console.queries import ExecutionFilters, encode_cursor
from saga.console.reads import events_of_payment, journal_of, outcomes_per_minute, parked_payments
from saga.console.timeline import LocalHistorySource, Timeline, TimelineSource, redact
from saga.console.triage import needs_attention
from store.executions import ExecutionRecord, find_execution, list_executions, payment_statuses
from store.outbox import OutboxEvent
from store.payments import Payment, get_payment
from store.replay_audit import AuditRow
from store.webhooks import Delivery, deliveries_of_event

__all__ = ["OUTCOMES", "ExecutionDetail", "ExecutionRow", "Overview", "audit_json", "delivery_json",
           "detail_json", "execution_detail", "execution_json", "execution_name", "execution_page", "overview",
           "overview_json", "payment_json",
           "timeline_json"]

OUTCOMES = ("succeeded", "failed", "attention", "other")
OVERVIEW_WINDOW = timedelta(hours=1)
# Step latencies come from the newest finished executions' timelines, at most this many: the local history is read
# from the records themselves; on AWS each timeline is a CloudWatch Logs query, so fewer are read there.
OVERVIEW_TIMELINES = 50
OVERVIEW_LOG_TIMELINES = 10
_MAX_SCANS = 10  # a needs-attention page reads at most this many batches of executions before it hands a cursor back
_SCAN_BATCH = 200


def execution_name(arn: str) -> str:
    """What `paysaga executions list` shows and the console's URLs use: the ARN's part after the last ':'."""
    return arn.rsplit(":", 1)[-1]


@dataclass(frozen=True, slots=True)
class ExecutionRow:
    record: ExecutionRecord
    payment_status: str | None
    look: bool


def execution_page(conn: Connection, filters: ExecutionFilters) -> tuple[list[ExecutionRow], str | None]:
    """One page of executions, newest first, and the cursor of the next (None on the last page). The needs-attention
    filter is the triage rule (saga.console.triage), applied to the rows as they are read."""
    kept: list[ExecutionRow] = []
    before = filters.before
    batch_size = _SCAN_BATCH if filters.needs_attention else filters.limit + 1
    for _ in range(_MAX_SCANS):
        batch = list_executions(conn, status=filters.status, payment_id=filters.payment_id, since=filters.since,
                                until=filters.until, merchant_id=filters.merchant, error=filters.error, before=before,
                                limit=batch_size)
        statuses = payment_statuses(conn, payment_ids=[r.payment_id for r in batch])
        for record in batch:
            status = statuses.get(record.payment_id)
            look = needs_attention(record, status)
            if filters.needs_attention and not look:
                continue
            if len(kept) == filters.limit:  # one more than the page: there is a next page
                last = kept[-1].record
                return kept, encode_cursor([last.started_at.isoformat(), last.execution_arn])
            kept.append(ExecutionRow(record, status, look))
        if len(batch) < batch_size:
            return kept, None
        before = (batch[-1].started_at, batch[-1].execution_arn)
    # Scanned enough for one answer: the next page goes on from where the scan stopped.
    return kept, encode_cursor([before[0].isoformat(), before[1]]) if before is not None else None


@dataclass(frozen=True, slots=True)
class ExecutionDetail:
    record: ExecutionRecord
    timeline: Timeline | None
    timeline_problem: str | None
    payment: Payment | None
    journal: list[dict[str, Any]]
    events: list[tuple[OutboxEvent, list[Delivery]]]
    others: list[ExecutionRow]
    look: bool


def parked_page(conn: Connection, *, after: tuple[datetime, int] | None, limit: int
                ) -> tuple[list[Payment], str | None]:
    """A page of the parked payments (oldest first) and the cursor of the next, if any."""
    rows = parked_payments(conn, after=after, limit=limit + 1)
    cursor = (encode_cursor([rows[limit - 1].created_at.isoformat(), rows[limit - 1].id])
              if len(rows) > limit else None)
    return rows[:limit], cursor


def execution_detail(conn: Connection, source: TimelineSource, name: str) -> ExecutionDetail | None:
    record = find_execution(conn, name)
    if record is None:
        return None
    payment = get_payment(conn, payment_id=record.payment_id)
    try:
        timeline, problem = source.timeline(record), None
    except Exception as error:  # a timeline that cannot be read leaves the rest of the page useful
        timeline, problem = None, f"{type(error).__name__}: {error}"
    events = [(event, deliveries_of_event(conn, event_id=event.id))
              for event in events_of_payment(conn, payment_id=record.payment_id)]
    siblings = list_executions(conn, payment_id=record.payment_id, limit=50)
    status = payment.status if payment is not None else None
    others = [ExecutionRow(r, status, needs_attention(r, status)) for r in siblings
              if r.execution_arn != record.execution_arn]
    return ExecutionDetail(record=record, timeline=timeline, timeline_problem=problem, payment=payment,
                           journal=journal_of(conn, payment_id=record.payment_id), events=events, others=others,
                           look=needs_attention(record, status))


@dataclass(frozen=True, slots=True)
class Overview:
    since: datetime
    minutes: list[datetime]
    outcomes: dict[str, list[int]]  # outcome -> payments per minute, aligned with `minutes`
    steps: list[tuple[str, int, int, int]] = field(default_factory=list)  # (state, p50 ms, p95 ms, samples)


def _percentile(values: list[int], fraction: float) -> int:
    """Nearest rank: the smallest value with at least `fraction` of the values at or below it."""
    ordered = sorted(values)
    rank = max(int(-(-fraction * len(ordered) // 1)), 1)
    return ordered[min(rank, len(ordered)) - 1]


def overview(conn: Connection, source: TimelineSource, now: datetime) -> Overview:
    """Payments per minute by outcome and each state's latency (p50/p95) over the last hour."""
    start = (now - OVERVIEW_WINDOW).replace(second=0, microsecond=0)
    minutes = [start + timedelta(minutes=i) for i in range(61)]
    index = {minute: i for i, minute in enumerate(minutes)}
    outcomes = {name: [0] * len(minutes) for name in OUTCOMES}
    for minute, outcome, count in outcomes_per_minute(conn, since=start):
        position = index.get(minute.astimezone(start.tzinfo))
        if position is not None:
            outcomes[outcome][position] += count
    durations: dict[str, list[int]] = {}
    sample = OVERVIEW_TIMELINES if isinstance(source, LocalHistorySource) else OVERVIEW_LOG_TIMELINES
    finished = [r for r in list_executions(conn, since=start, limit=sample * 2) if r.stopped_at][:sample]
    for record in finished:
        try:
            timeline = source.timeline(record)
        except Exception:  # noqa: S112  # one unreadable history leaves the others' latencies
            continue
        for step in timeline.steps:
            if step.duration_ms is not None and step.state_type == "Task":
                durations.setdefault(step.name, []).append(step.duration_ms)
    steps = sorted(((name, _percentile(v, 0.5), _percentile(v, 0.95), len(v)) for name, v in durations.items()),
                   key=lambda row: -row[2])
    return Overview(since=start, minutes=minutes, outcomes=outcomes, steps=steps)


def overview_json(view: Overview) -> dict[str, Any]:
    return {"since": view.since.isoformat(), "minutes": [m.isoformat() for m in view.minutes],
            "payments_per_minute": view.outcomes,
            "step_latency_ms": [{"state": name, "p50": p50, "p95": p95, "samples": n}
                                for name, p50, p95, n in view.steps],
            "median_of_p50": int(statistics.median([p50 for _, p50, _, _ in view.steps])) if view.steps else None}


def execution_json(row: ExecutionRow) -> dict[str, Any]:
    record = row.record
    return {"name": execution_name(record.execution_arn), "execution_arn": record.execution_arn,
            "payment_id": str(record.payment_id), "status": record.status, "error": record.error,
            "started_at": record.started_at.isoformat(),
            "stopped_at": record.stopped_at.isoformat() if record.stopped_at else None,
            "replay_of": record.replay_of, "payment_status": row.payment_status, "needs_attention": row.look}


def payment_json(payment: Payment) -> dict[str, Any]:
    """The payment as an operator sees it: no payment method token, metadata redacted."""
    return {"id": str(payment.id), "merchant_id": payment.merchant_id, "amount_minor": payment.amount_minor,
            "currency": payment.currency, "captured_amount_minor": payment.captured_amount_minor,
            "capture_mode": payment.capture_mode, "status": payment.status, "gateway": payment.gateway,
            "gateway_reference": payment.gateway_reference, "failure_code": payment.failure_code,
            "failure_message": payment.failure_message, "metadata": redact(payment.metadata),
            "created_at": payment.created_at.isoformat(), "updated_at": payment.updated_at.isoformat()}


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    return {"endpoint_id": delivery.endpoint_id, "status": delivery.status, "attempts": delivery.attempts,
            "last_status_code": delivery.last_status_code, "last_error": delivery.last_error,
            "next_attempt_at": delivery.next_attempt_at.isoformat()}


def timeline_json(timeline: Timeline) -> dict[str, Any]:
    return {"status": timeline.status, "source": timeline.source, "error": timeline.error,
            "cause": redact(timeline.cause),
            "started_at": timeline.started_at.isoformat() if timeline.started_at else None,
            "stopped_at": timeline.stopped_at.isoformat() if timeline.stopped_at else None,
            "steps": [{"name": s.name, "type": s.state_type, "status": s.status, "retries": s.retries,
                       "entered_at": s.entered_at.isoformat(),
                       "exited_at": s.exited_at.isoformat() if s.exited_at else None, "duration_ms": s.duration_ms,
                       "input": redact(s.input), "output": redact(s.output), "error": s.error,
                       "cause": redact(s.cause)} for s in timeline.steps]}


def detail_json(detail: ExecutionDetail) -> dict[str, Any]:
    row = ExecutionRow(detail.record, detail.payment.status if detail.payment else None, detail.look)
    return {"execution": {**execution_json(row), "input": redact(detail.record.input),
                          "cause": redact(detail.record.cause)},
            "timeline": timeline_json(detail.timeline) if detail.timeline else None,
            "timeline_problem": detail.timeline_problem,
            "payment": payment_json(detail.payment) if detail.payment else None,
            "journal": detail.journal,
            "events": [{"id": e.id, "type": e.event_type, "created_at": e.created_at.isoformat(),
                        "sent_at": e.sent_at.isoformat() if e.sent_at else None, "payload": redact(e.payload),
                        "deliveries": [delivery_json(d) for d in deliveries]} for e, deliveries in detail.events],
            "other_executions": [execution_json(r) for r in detail.others]}


def audit_json(row: AuditRow) -> dict[str, Any]:
    return {"id": row.id, "at": row.at.isoformat(), "operator": row.operator, "reason": row.reason,
            "execution_arn": row.execution_arn, "action": row.action, "new_execution_arn": row.new_execution_arn,
            "outcome": row.outcome, "detail": row.detail}
