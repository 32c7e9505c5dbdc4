"""The console's HTML pages, behind a session (the handler redirects to the login page before a route runs)."""

from __future__ import annotations

import hmac
from urllib.parse import unquote

from saga.console import pages
from saga.console.context import Call
from saga.console.queries import (
    BadQuery,
    ExecutionFilters,
    encode_cursor,
    execution_filters,
    id_cursor,
    limit_of,
    time_cursor,
)
from saga.console.reads import audit_page, open_discrepancies
from saga.console.views import execution_detail, execution_name, execution_page, overview, parked_page
from saga.console.web import Answer, html_answer
from saga.replay import ReplayError, replay_audited

__all__ = ["csrf_ok", "route_page"]

MAX_REASON = 2_000


def csrf_ok(call: Call, form: dict[str, str]) -> bool:
    """A POST from one of our own forms: the session's token in the form, and the request from this site."""
    token = form.get("csrf_token", "")
    return call.request.same_origin() and hmac.compare_digest(token.encode(), call.session.csrf_token.encode())


def route_page(call: Call, path: str) -> Answer:
    """`path`: the path after /console ("" for the overview)."""
    method = call.request.method
    parts = [unquote(p) for p in path.split("/") if p]
    try:
        if not parts and method == "GET":
            return _overview(call)
        if parts == ["executions"] and method == "GET":
            return _executions(call)
        if len(parts) == 2 and parts[0] == "executions" and method == "GET":
            return _execution(call, parts[1])
        if len(parts) == 3 and parts[0] == "executions" and parts[2] == "replay" and method in ("GET", "POST"):
            return _replay(call, parts[1])
        if parts == ["parked"] and method == "GET":
            return _parked(call)
        if parts == ["discrepancies"] and method == "GET":
            return _discrepancies(call)
        if parts == ["audit"] and method == "GET":
            return _audit(call)
    except BadQuery as bad:
        return html_answer(pages.error_page("Bad request", str(bad), call.session), 400)
    return html_answer(pages.error_page("Not found", f"no page {method} /console{path}", call.session), 404)


def _overview(call: Call) -> Answer:
    with call.services().engine.connect() as conn:
        view = overview(conn, call.timelines(), call.now)
    return html_answer(pages.overview_page(view, call.session))


def _executions(call: Call) -> Answer:
    try:
        filters = execution_filters(call.request)
    except BadQuery as bad:  # the page again, with the filters emptied and the problem said
        return html_answer(pages.executions_page([], ExecutionFilters(), None, call.session, problem=str(bad)), 400)
    with call.services().engine.connect() as conn:
        rows, cursor = execution_page(conn, filters)
    return html_answer(pages.executions_page(rows, filters, cursor, call.session))


def _not_found(call: Call, name: str) -> Answer:
    return html_answer(pages.error_page("Not found", f"no execution {name}", call.session), 404)


def _execution(call: Call, name: str) -> Answer:
    with call.services().engine.connect() as conn:
        detail = execution_detail(conn, call.timelines(), name)
        audit = audit_page(conn, before_id=None, limit=50, execution_arn=detail.record.execution_arn) if detail else []
    if detail is None:
        return _not_found(call, name)
    return html_answer(pages.execution_page(detail, audit, call.session))


def _replay(call: Call, name: str) -> Answer:
    if not call.can_replay:
        return html_answer(pages.error_page("Forbidden", "a viewer cannot replay: ask an operator", call.session),
                           403)
    with call.services().engine.connect() as conn:
        detail = execution_detail(conn, call.timelines(), name)
    if detail is None:
        return _not_found(call, name)
    if call.request.method == "GET":
        return html_answer(pages.replay_confirm_page(detail, call.session))
    form = call.request.form()
    if not csrf_ok(call, form):
        return html_answer(pages.error_page("Forbidden", "the form is stale or came from another site: open the "
                                            "execution again", call.session), 403)
    reason = form.get("reason", "").strip()
    if not reason or len(reason) > MAX_REASON:
        problem = "a reason is required" if not reason else f"the reason is at most {MAX_REASON} characters"
        return html_answer(pages.replay_confirm_page(detail, call.session, problem=problem, reason=reason), 400)
    shown = execution_name(detail.record.execution_arn)
    try:
        outcome = replay_audited(call.services(), detail.record.execution_arn,
                                 operator=call.session.operator.username, reason=reason)
    except ReplayError as refused:
        return html_answer(pages.replay_result_page(shown, call.session, new_arn=None, status=None, error=None,
                                                    payment_status=None, refused=str(refused)), 409)
    return html_answer(pages.replay_result_page(shown, call.session, new_arn=outcome.execution_arn,
                                                status=outcome.status, error=outcome.error,
                                                payment_status=outcome.payment_status, refused=None))


def _parked(call: Call) -> Answer:
    with call.services().engine.connect() as conn:
        rows, cursor = parked_page(conn, after=time_cursor(call.request, int), limit=limit_of(call.request))
    return html_answer(pages.parked_page(rows, cursor, call.session))


def _discrepancies(call: Call) -> Answer:
    limit = limit_of(call.request)
    with call.services().engine.connect() as conn:
        rows = open_discrepancies(conn, before_id=id_cursor(call.request), limit=limit + 1)
    cursor = encode_cursor([int(rows[limit - 1]["discrepancy_id"])]) if len(rows) > limit else None
    return html_answer(pages.discrepancies_page(rows[:limit], cursor, call.session))


def _audit(call: Call) -> Answer:
    limit = limit_of(call.request)
    with call.services().engine.connect() as conn:
        rows = audit_page(conn, before_id=id_cursor(call.request), limit=limit + 1)
    cursor = encode_cursor([rows[limit - 1].id]) if len(rows) > limit else None
    return html_answer(pages.audit_page(rows[:limit], cursor, call.session))
