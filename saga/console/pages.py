"""The console's HTML: plain functions building strings, every value through html.escape (`e`). No inline script or
style (the CSP forbids both); the one stylesheet is /console/static/console.css."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import quote, urlencode

from saga.console.charts import latency_bars, stacked_columns
from saga.console.queries import ExecutionFilters
from saga.console.timeline import redact
from saga.console.views import OUTCOMES, ExecutionDetail, ExecutionRow, Overview, execution_name
from store.operators import Session
from store.payments import Payment
from store.replay_audit import AuditRow
from store.schema import EXECUTION_STATUSES
from store.webhooks import Delivery

__all__ = ["audit_page", "discrepancies_page", "error_page", "execution_page", "executions_page", "login_page",
           "overview_page", "parked_page", "replay_confirm_page", "replay_result_page"]

_NAV = (("/console", "Overview"), ("/console/executions", "Executions"), ("/console/parked", "Parked"),
        ("/console/discrepancies", "Discrepancies"), ("/console/audit", "Audit"))


def e(value: object) -> str:
    return escape("" if value is None else str(value), quote=True)


def _time(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _json(value: Any) -> str:
    return json.dumps(redact(value), indent=2, sort_keys=True, default=str)


def _layout(title: str, body: str, session: Session | None, *, active: str = "") -> str:
    nav = ""
    if session is not None:
        current = ' class="active"'
        links = "".join(f'<a href="{href}"{current if href == active else ""}>{e(label)}</a>' for href, label in _NAV)
        nav = (f'<nav>{links}<span class="who">{e(session.operator.username)} ({e(session.operator.role)})</span>'
               f'<form method="post" action="/console/logout" class="inline">{_csrf(session)}'
               f'<button type="submit" id="logout">Log out</button></form></nav>')
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{e(title)} · paysaga console</title>'
            '<link rel="stylesheet" href="/console/static/console.css"></head>'
            f'<body><header><a class="brand" href="/console">paysaga console</a>{nav}</header>'
            f'<main><h1>{e(title)}</h1>{body}</main></body></html>')


def _csrf(session: Session) -> str:
    return f'<input type="hidden" name="csrf_token" value="{e(session.csrf_token)}">'


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, css: str = "", empty: str = "nothing") -> str:
    """Cells are markup already escaped by the caller."""
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    if not body:
        return f'<p class="empty">{e(empty)}</p>'
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    return f'<table class="{e(css)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _execution_link(arn: str) -> str:
    name = execution_name(arn)
    return f'<a href="/console/executions/{quote(name, safe="")}">{e(name)}</a>'


def _badge(status: str | None) -> str:
    return f'<span class="badge b-{e((status or "none").lower())}">{e(status or "-")}</span>'


def login_page(*, message: str | None = None, username: str = "") -> str:
    note = f'<p class="error" id="login-error">{e(message)}</p>' if message else ""
    body = (f'{note}<form method="post" action="/console/login" class="login">'
            f'<label>Username <input name="username" id="username" autocomplete="username" required '
            f'value="{e(username)}"></label>'
            '<label>Password <input name="password" id="password" type="password" autocomplete="current-password" '
            'required></label><button type="submit" id="login">Log in</button></form>')
    return _layout("Log in", body, None)


def error_page(title: str, message: str, session: Session | None) -> str:
    return _layout(title, f'<p class="error" id="error">{e(message)}</p>', session)


def overview_page(view: Overview, session: Session) -> str:
    labels = [m.strftime("%H:%M") for m in view.minutes]
    payments = stacked_columns("payments per minute by outcome, last hour", labels,
                               [(name, view.outcomes[name]) for name in OUTCOMES])
    latency = latency_bars("step latency p50/p95, last hour", [(n, p50, p95) for n, p50, p95, _ in view.steps])
    total = {name: sum(values) for name, values in view.outcomes.items()}
    counts = " · ".join(f"{e(name)}: <strong>{total[name]}</strong>" for name in OUTCOMES)
    steps = _table(("state", "p50 ms", "p95 ms", "samples"),
                   ((e(n), str(p50), str(p95), str(c)) for n, p50, p95, c in view.steps), empty="no steps yet")
    body = (f'<section><h2>Payments per minute, since {e(_time(view.since))} UTC</h2><p>{counts}</p>{payments}'
            f'</section><section><h2>Step latency (p50 / p95)</h2>{latency}{steps}</section>')
    return _layout("Overview", body, session, active="/console")


def _filter_form(filters: ExecutionFilters) -> str:
    options = "".join(f'<option value="{s}"{" selected" if filters.status == s else ""}>{s}</option>'
                      for s in EXECUTION_STATUSES)
    checked = " checked" if filters.needs_attention else ""
    since = filters.since.isoformat() if filters.since else ""
    until = filters.until.isoformat() if filters.until else ""
    return ('<form method="get" action="/console/executions" class="filters">'
            f'<label>Status <select name="status" id="f-status"><option value="">any</option>{options}</select></label>'
            f'<label>Since <input name="since" id="f-since" value="{e(since)}" placeholder="2026-12-03T14:00Z">'
            f'</label><label>Until <input name="until" id="f-until" value="{e(until)}"></label>'
            f'<label>Merchant <input name="merchant" id="f-merchant" value="{e(filters.merchant)}"></label>'
            f'<label>Payment <input name="payment" id="f-payment" value="{e(filters.payment_id)}"></label>'
            f'<label>Error <input name="error" id="f-error" value="{e(filters.error)}"></label>'
            f'<label class="check"><input type="checkbox" name="needs_attention" id="f-look" value="yes"{checked}>'
            ' needs attention</label><button type="submit" id="f-apply">Filter</button></form>')


def _execution_rows(rows: Sequence[ExecutionRow]) -> list[list[str]]:
    out = []
    for row in rows:
        record = row.record
        duration = ("" if record.stopped_at is None
                    else f"{(record.stopped_at - record.started_at).total_seconds() * 1000:.0f} ms")
        out.append([_execution_link(record.execution_arn), _badge(record.status),
                    '<span class="look">yes</span>' if row.look else "", e(record.payment_id),
                    _badge(row.payment_status), e(_time(record.started_at)), e(duration), e(record.error)])
    return out


_EXECUTION_HEADERS = ("execution", "status", "look", "payment", "payment status", "started (UTC)", "took", "error")


def executions_page(rows: Sequence[ExecutionRow], filters: ExecutionFilters, next_cursor: str | None,
                    session: Session, *, problem: str | None = None) -> str:
    note = f'<p class="error" id="error">{e(problem)}</p>' if problem else ""
    table = _table(_EXECUTION_HEADERS, _execution_rows(rows), css="executions", empty="no execution matches")
    more = ""
    if next_cursor is not None:
        query = urlencode({**filters.as_query(), "cursor": next_cursor})
        more = f'<p><a id="next" href="/console/executions?{e(query)}">Older →</a></p>'
    return _layout("Executions", note + _filter_form(filters) + table + more, session, active="/console/executions")


def _payment_section(payment: Payment | None) -> str:
    if payment is None:
        return '<p class="empty">the payment row is not there (yet)</p>'
    rows = [("id", payment.id), ("merchant", payment.merchant_id),
            ("amount (minor units)", f"{payment.amount_minor} {payment.currency}"),
            ("captured (minor units)", payment.captured_amount_minor), ("capture mode", payment.capture_mode),
            ("gateway", payment.gateway), ("gateway reference", payment.gateway_reference),
            ("failure", f"{payment.failure_code or ''} {payment.failure_message or ''}".strip()),
            ("created (UTC)", _time(payment.created_at)), ("updated (UTC)", _time(payment.updated_at))]
    cells = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in rows)
    return (f'<table class="facts" id="payment"><tr><th>status</th><td>{_badge(payment.status)}</td></tr>'
            f"{cells}</table>")


def _timeline_section(detail: ExecutionDetail) -> str:
    if detail.timeline is None:
        return f'<p class="error">the timeline cannot be read: {e(detail.timeline_problem)}</p>'
    timeline = detail.timeline
    items = []
    for step in timeline.steps:
        retries = f" · {step.retries} retr{'y' if step.retries == 1 else 'ies'}" if step.retries else ""
        took = f"{step.duration_ms} ms" if step.duration_ms is not None else "running"
        error = (f'<p class="error">{e(step.error)}: {e(redact(step.cause))}</p>' if step.error else "")
        items.append(
            f'<li class="step st-{e(step.status)}"><details><summary><span class="name">{e(step.name)}</span>'
            f' <span class="type">{e(step.state_type)}</span> {_badge(step.status)}'
            f' <span class="took">{e(took)}{e(retries)}</span>'
            f' <span class="at">{e(_time(step.entered_at))}</span></summary>{error}'
            f'<div class="io"><div><h4>input</h4><pre>{e(_json(step.input))}</pre></div>'
            f'<div><h4>output</h4><pre>{e(_json(step.output))}</pre></div></div></details></li>')
    ending = (f'<p class="error" id="execution-error">{e(timeline.error)}: {e(redact(timeline.cause))}</p>'
              if timeline.error else "")
    return (f'<p class="muted">source: {e(timeline.source)} · {len(timeline.steps)} states</p>{ending}'
            f'<ol class="timeline" id="timeline">{"".join(items)}</ol>')


def _delivery(delivery: Delivery) -> str:
    parts = [f"{e(delivery.endpoint_id)}: {_badge(delivery.status)} {delivery.attempts} attempt(s)"]
    if delivery.last_status_code:
        parts.append(f"HTTP {e(delivery.last_status_code)}")
    if delivery.last_error:
        parts.append(e(delivery.last_error))
    return " · ".join(parts)


def execution_page(detail: ExecutionDetail, audit: Sequence[AuditRow], session: Session) -> str:
    record = detail.record
    name = execution_name(record.execution_arn)
    replay = ""
    if session.operator.role == "operator":
        replay = (f'<p><a class="button" id="replay" href="/console/executions/{quote(name, safe="")}/replay">'
                  "Replay this execution…</a></p>")
    facts = [("execution ARN", e(record.execution_arn)), ("status", _badge(record.status)),
             ("needs attention", "yes" if detail.look else "no"),
             ("started (UTC)", e(_time(record.started_at))), ("stopped (UTC)", e(_time(record.stopped_at))),
             ("error", e(record.error)), ("cause", e(redact(record.cause))),
             ("replay of", _execution_link(record.replay_of) if record.replay_of else "")]
    head = "".join(f"<tr><th>{e(k)}</th><td>{v}</td></tr>" for k, v in facts)
    journal = _table(("entry", "transaction", "kind", "account", "side", "effect", "amount (minor)", "currency",
                      "at (UTC)"),
                     ([e(j["entry_id"]), e(j["transaction_id"]), e(j["transaction_kind"]), e(j["account_code"]),
                       e(j["side"]), e(j["effect"]), e(j["amount_minor"]), e(j["currency"]), e(_time(j["created_at"]))]
                      for j in detail.journal), css="journal", empty="no ledger entries")
    events = _table(("event", "type", "created (UTC)", "sent (UTC)", "deliveries"),
                    ([e(ev.id), e(ev.event_type), e(_time(ev.created_at)), e(_time(ev.sent_at)),
                      "<br>".join(_delivery(d) for d in deliveries) or "none"]
                     for ev, deliveries in detail.events), css="events", empty="no outbox events")
    others = _table(_EXECUTION_HEADERS, _execution_rows(detail.others), css="executions",
                    empty="no other executions")
    audit_rows = _audit_table(audit)
    body = (f'<table class="facts" id="execution">{head}</table>{replay}'
            f'<section><h2>Timeline</h2>{_timeline_section(detail)}</section>'
            f'<section><h2>Input (recorded)</h2><pre>{e(_json(record.input))}</pre></section>'
            f'<section><h2>Payment</h2>{_payment_section(detail.payment)}</section>'
            f'<section><h2>Ledger journal</h2>{journal}</section>'
            f'<section><h2>Outbox events and webhook deliveries</h2>{events}</section>'
            f'<section><h2>Other executions of this payment</h2>{others}</section>'
            f'<section><h2>Replays</h2>{audit_rows}</section>')
    return _layout(f"Execution {name}", body, session, active="/console/executions")


def replay_confirm_page(detail: ExecutionDetail, session: Session, *, problem: str | None = None,
                        reason: str = "") -> str:
    record = detail.record
    name = execution_name(record.execution_arn)
    payment = detail.payment
    what = (f"A new execution will start for payment <strong>{e(record.payment_id)}</strong>"
            f"{' (now ' + _badge(payment.status) + ')' if payment else ''} with the input execution "
            f"<strong>{e(name)}</strong> recorded. Its steps are idempotent: each one skips what already took effect "
            "(a reservation made, an authorization or a capture at the gateway, ledger entries posted) and the saga "
            "then continues or compensates from there. Nothing is replayed while another execution runs the "
            "payment. The replay, your name and your reason are written to the audit trail.")
    note = f'<p class="error" id="error">{e(problem)}</p>' if problem else ""
    body = (f'<p id="what">{what}</p>{note}'
            f'<form method="post" action="/console/executions/{quote(name, safe="")}/replay" class="replay">'
            f'{_csrf(session)}<label>Reason (required) <textarea name="reason" id="reason" required rows="3" '
            f'maxlength="2000">{e(reason)}</textarea></label>'
            '<button type="submit" id="confirm-replay">Replay</button> '
            f'<a href="/console/executions/{quote(name, safe="")}">Cancel</a></form>')
    return _layout(f"Replay {name}?", body, session, active="/console/executions")


def replay_result_page(name: str, session: Session, *, new_arn: str | None, status: str | None,
                       error: str | None, payment_status: str | None, refused: str | None) -> str:
    if refused is not None:
        body = (f'<p class="error" id="result">refused: {e(refused)}</p>'
                f'<p><a href="/console/executions/{quote(name, safe="")}">Back to {e(name)}</a></p>')
        return _layout("Replay refused", body, session, active="/console/executions")
    assert new_arn is not None
    rows = [("new execution", _execution_link(new_arn)), ("status", _badge(status)), ("error", e(error)),
            ("payment status", _badge(payment_status))]
    cells = "".join(f"<tr><th>{e(k)}</th><td>{v}</td></tr>" for k, v in rows)
    body = (f'<table class="facts" id="result">{cells}</table>'
            f'<p><a href="/console/executions/{quote(name, safe="")}">Back to {e(name)}</a> · '
            '<a href="/console/audit">Audit trail</a></p>')
    return _layout(f"Replay of {name}: {status}", body, session, active="/console/executions")


def parked_page(parked: Sequence[Payment], next_cursor: str | None, session: Session) -> str:
    table = _table(("payment", "merchant", "amount (minor)", "gateway", "gateway reference", "failure",
                    "created (UTC)", "updated (UTC)", ""),
                   ([e(p.id), e(p.merchant_id), e(f"{p.amount_minor} {p.currency}"), e(p.gateway),
                     e(p.gateway_reference), e(f"{p.failure_code or ''} {p.failure_message or ''}".strip()),
                     e(_time(p.created_at)), e(_time(p.updated_at)),
                     f'<a href="/console/executions?payment={p.id}">executions</a>'] for p in parked),
                   css="parked", empty="no parked payment")
    more = f'<p><a id="next" href="/console/parked?cursor={e(next_cursor)}">More →</a></p>' if next_cursor else ""
    return _layout("Parked payments", "<p>Oldest first: the work queue.</p>" + table + more, session,
                   active="/console/parked")


def discrepancies_page(rows: Sequence[dict[str, Any]], next_cursor: str | None, session: Session) -> str:
    table = _table(("id", "kind", "gateway", "subject", "expected (minor)", "settled (minor)", "currency", "payment",
                    "opened (UTC)", "detail"),
                   ([e(r["discrepancy_id"]), e(r["kind"]), e(r["gateway"]), e(r["subject"]), e(r["expected_minor"]),
                     e(r["settled_minor"]), e(r["currency"]),
                     f'<a href="/console/executions?payment={e(r["payment_id"])}">{e(r["payment_id"])}</a>'
                     if r["payment_id"] else "", e(_time(r["opened_at"])), e(redact(r["detail"]))] for r in rows),
                   css="discrepancies", empty="no open discrepancy")
    more = (f'<p><a id="next" href="/console/discrepancies?cursor={e(next_cursor)}">More →</a></p>'
            if next_cursor else "")
    return _layout("Open reconciliation discrepancies", table + more, session, active="/console/discrepancies")


def _audit_table(rows: Sequence[AuditRow]) -> str:
    return _table(("id", "at (UTC)", "operator", "action", "execution", "reason", "new execution", "outcome",
                   "detail"),
                  ([e(r.id), e(_time(r.at)), e(r.operator), e(r.action), _execution_link(r.execution_arn),
                    e(r.reason), _execution_link(r.new_execution_arn) if r.new_execution_arn else "",
                    e(r.outcome), e(r.detail)] for r in rows), css="audit", empty="no replay yet")


def audit_page(rows: Sequence[AuditRow], next_cursor: str | None, session: Session) -> str:
    more = f'<p><a id="next" href="/console/audit?cursor={e(next_cursor)}">Older →</a></p>' if next_cursor else ""
    return _layout("Replay audit trail", _audit_table(rows) + more, session, active="/console/audit")
