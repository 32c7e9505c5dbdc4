"""The console's JSON endpoints (/console/api/...): the same data as the pages. Every one needs a session (the handler
answers 401 before a route runs), validates its query (400 naming the parameter) and pages with `limit` (<= 200)
and an opaque `next` cursor."""

from __future__ import annotations

import hmac

from saga.console.context import Call
from saga.console.queries import BadQuery, encode_cursor, execution_filters, id_cursor, limit_of, time_cursor
from saga.console.reads import audit_page, open_discrepancies
from saga.console.views import (
    audit_json,
    detail_json,
    execution_detail,
    execution_json,
    execution_page,
    overview,
    overview_json,
    parked_page,
    payment_json,
)
from saga.console.web import Answer, json_answer
from saga.replay import ReplayError, replay_audited
from store.executions import find_execution

__all__ = ["api_error", "route_api"]

MAX_REASON = 2_000


def api_error(status: int, kind: str, message: str, field: str | None = None) -> Answer:
    """The API's error shape (openapi.yaml Error)."""
    error: dict[str, str] = {"type": kind, "message": message}
    if field is not None:
        error["field"] = field
    return json_answer({"error": error}, status)


def route_api(call: Call, rest: str) -> Answer:
    """`rest`: the path after /console/api/."""
    method = call.request.method
    parts = [p for p in rest.split("/") if p]
    try:
        if parts == ["session"] and method == "GET":
            return _session(call)
        if parts == ["executions"] and method == "GET":
            return _executions(call)
        if len(parts) == 2 and parts[0] == "executions" and method == "GET":
            return _execution(call, parts[1])
        if len(parts) == 3 and parts[0] == "executions" and parts[2] == "replay":
            if method != "POST":
                return api_error(405, "MethodNotAllowed", "POST a replay")
            return _replay(call, parts[1])
        if parts == ["parked"] and method == "GET":
            return _parked(call)
        if parts == ["discrepancies"] and method == "GET":
            return _discrepancies(call)
        if parts == ["overview"] and method == "GET":
            return json_answer(_overview(call))
        if parts == ["audit"] and method == "GET":
            return _audit(call)
    except BadQuery as bad:
        return api_error(400, "BadQuery", bad.message, bad.parameter)
    return api_error(404, "NotFound", f"no route for {method} /console/api/{rest}")


def _session(call: Call) -> Answer:
    """Who is logged in, and the CSRF token a script sends back as X-CSRF-Token with a replay."""
    operator = call.session.operator
    return json_answer({"operator": operator.username, "role": operator.role,
                        "csrf_token": call.session.csrf_token, "expires_at": call.session.expires_at.isoformat()})


def _executions(call: Call) -> Answer:
    filters = execution_filters(call.request)
    with call.services().engine.connect() as conn:
        rows, cursor = execution_page(conn, filters)
    return json_answer({"executions": [execution_json(r) for r in rows], "next": cursor})


def _execution(call: Call, name: str) -> Answer:
    with call.services().engine.connect() as conn:
        detail = execution_detail(conn, call.timelines(), name)
        audit = audit_page(conn, before_id=None, limit=50, execution_arn=detail.record.execution_arn) if detail else []
    if detail is None:
        return api_error(404, "ExecutionNotFound", f"no execution {name}", "execution")
    return json_answer({**detail_json(detail), "audit": [audit_json(a) for a in audit]})


def _replay(call: Call, name: str) -> Answer:
    if not call.can_replay:
        return api_error(403, "Forbidden", "a viewer cannot replay: ask an operator")
    token = call.request.header("x-csrf-token") or ""
    if not hmac.compare_digest(token.encode(), call.session.csrf_token.encode()):
        return api_error(403, "CsrfTokenInvalid", "send the session's csrf_token (GET /console/api/session) as "
                         "X-CSRF-Token", "X-CSRF-Token")
    body = call.request.json_body()
    reason = body.get("reason") if isinstance(body, dict) else None
    if not isinstance(reason, str) or not reason.strip():
        return api_error(400, "ReasonRequired", "a replay needs a reason: {\"reason\": \"...\"}", "reason")
    if len(reason) > MAX_REASON:
        return api_error(400, "ReasonTooLong", f"at most {MAX_REASON} characters", "reason")
    with call.services().engine.connect() as conn:
        if find_execution(conn, name) is None:
            return api_error(404, "ExecutionNotFound", f"no execution {name}", "execution")
    try:
        outcome = replay_audited(call.services(), name, operator=call.session.operator.username,
                                 reason=reason.strip())
    except ReplayError as refused:
        return api_error(409, "ReplayRefused", str(refused), "execution")
    return json_answer({"execution_arn": outcome.execution_arn, "name": outcome.execution_arn.rsplit(":", 1)[-1],
                        "status": outcome.status, "error": outcome.error,
                        "payment_status": outcome.payment_status})


def _parked(call: Call) -> Answer:
    with call.services().engine.connect() as conn:
        rows, cursor = parked_page(conn, after=time_cursor(call.request, int), limit=limit_of(call.request))
    return json_answer({"payments": [payment_json(p) for p in rows], "next": cursor})


def _discrepancies(call: Call) -> Answer:
    limit = limit_of(call.request)
    before = id_cursor(call.request)
    with call.services().engine.connect() as conn:
        rows = open_discrepancies(conn, before_id=before, limit=limit + 1)
    cursor = encode_cursor([int(rows[limit - 1]["discrepancy_id"])]) if len(rows) > limit else None
    return json_answer({"discrepancies": rows[:limit], "next": cursor})


def _overview(call: Call) -> dict[str, object]:
    with call.services().engine.connect() as conn:
        return overview_json(overview(conn, call.timelines(), call.now))


def _audit(call: Call) -> Answer:
    limit = limit_of(call.request)
    before = id_cursor(call.request)
    execution = call.request.param("execution")
    arn = None
    if execution is not None:
        with call.services().engine.connect() as conn:
            record = find_execution(conn, execution)
        if record is None:
            raise BadQuery("execution", f"no execution {execution}")
        arn = record.execution_arn
    with call.services().engine.connect() as conn:
        rows = audit_page(conn, before_id=before, limit=limit + 1, execution_arn=arn)
    cursor = encode_cursor([rows[limit - 1].id]) if len(rows) > limit else None
    return json_answer({"audit": [audit_json(r) for r in rows[:limit]], "next": cursor})
