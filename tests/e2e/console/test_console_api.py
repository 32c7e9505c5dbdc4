"""The console's JSON endpoints on the live stack, over real HTTP: a session on every one, the viewer's 403 on replay,
validation naming the parameter, pagination with `next`, the filters, and the security headers on every answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text

from local.testing.live import LiveStack
from tests.e2e.console.support import declined_payment, login, new_operator, origin, parked_payment

ENDPOINTS = ("/console/api/session", "/console/api/executions", "/console/api/executions/nope",
             "/console/api/parked", "/console/api/discrepancies", "/console/api/overview", "/console/api/audit")
SECURITY = {"content-security-policy": ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' "
                                        "data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
            "x-content-type-options": "nosniff", "referrer-policy": "no-referrer", "x-frame-options": "DENY"}


@pytest.fixture(scope="module")
def operator(live: LiveStack) -> httpx.Client:
    return login(live, *new_operator(live, "operator"))


@pytest.fixture(scope="module")
def viewer(live: LiveStack) -> httpx.Client:
    return login(live, *new_operator(live, "viewer"))


def _secure(answer: httpx.Response) -> None:
    for name, value in SECURITY.items():
        assert answer.headers.get(name) == value, (name, answer.headers)


@pytest.mark.parametrize("path", ENDPOINTS)
def test_every_endpoint_needs_a_session(live: LiveStack, path: str) -> None:
    anonymous = httpx.get(f"{live.api_url}{path}", timeout=30)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.json()["error"]["type"] == "Unauthorized"
    _secure(anonymous)
    forged = httpx.get(f"{live.api_url}{path}", cookies={"paysaga_console": "not-a-session"}, timeout=30)
    assert forged.status_code == 401


def test_session_names_the_operator_and_the_answers_carry_the_security_headers(
        live: LiveStack, viewer: httpx.Client) -> None:
    answer = viewer.get("/console/api/session")
    assert answer.status_code == 200
    body = answer.json()
    assert body["role"] == "viewer" and body["operator"].startswith("viewer-") and len(body["csrf_token"]) >= 20
    assert answer.headers["cache-control"] == "no-store"
    _secure(answer)
    css = httpx.get(f"{live.api_url}/console/static/console.css", timeout=30)
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    _secure(css)
    for other in ("handler.py", "..%2Fhandler.py", "static%2Fconsole.css"):  # only the listed files are served
        assert httpx.get(f"{live.api_url}/console/static/{other}", timeout=30).status_code == 404, other


def test_the_login_cookie_is_http_only_same_site_strict_and_scoped_to_the_console(live: LiveStack) -> None:
    username, password = new_operator(live, "viewer")
    answer = httpx.post(f"{live.api_url}/console/login", data={"username": username, "password": password},
                        headers={"Origin": origin(live)}, timeout=30)
    assert answer.status_code == 303 and answer.headers["location"] == "/console"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("paysaga_console=")
    for attribute in ("HttpOnly", "SameSite=Strict", "Path=/console"):
        assert attribute in cookie
    assert "Secure" not in cookie  # the local stack serves plain http (CONSOLE_INSECURE_COOKIES=true)
    cross_site = httpx.post(f"{live.api_url}/console/login", data={"username": username, "password": password},
                            headers={"Origin": "https://evil.example"}, timeout=30)
    assert cross_site.status_code == 403 and "set-cookie" not in cross_site.headers
    wrong = httpx.post(f"{live.api_url}/console/login", data={"username": username, "password": "x" * 14},
                       headers={"Origin": origin(live)}, timeout=30)
    assert wrong.status_code == 401 and "set-cookie" not in wrong.headers


def test_executions_filter_page_and_refuse_bad_input(live: LiveStack, operator: httpx.Client) -> None:
    began = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    parked_id, parked_name = parked_payment(live)
    declined_id, declined_name = declined_payment(live)

    failed = operator.get("/console/api/executions", params={"status": "FAILED", "limit": 200}).json()
    names = {e["name"]: e for e in failed["executions"]}
    assert names[parked_name]["needs_attention"] is True and names[parked_name]["payment_status"] == "needs_attention"
    assert names[declined_name]["needs_attention"] is False and names[declined_name]["error"] == "PaymentDeclined"
    assert all(e["status"] == "FAILED" for e in failed["executions"])

    look = operator.get("/console/api/executions", params={"needs_attention": "yes", "limit": 200}).json()
    assert parked_name in {e["name"] for e in look["executions"]}
    assert declined_name not in {e["name"] for e in look["executions"]}
    assert all(e["needs_attention"] for e in look["executions"])

    by_payment = operator.get("/console/api/executions", params={"payment": declined_id}).json()
    assert [e["name"] for e in by_payment["executions"]] == [declined_name] and by_payment["next"] is None
    with live.engine.connect() as conn:
        merchant = conn.execute(text("SELECT merchant_id FROM payments WHERE id = :id"),
                                {"id": int(parked_id)}).scalar_one()
    by_merchant = operator.get("/console/api/executions", params={"merchant": merchant}).json()
    assert {e["payment_id"] for e in by_merchant["executions"]} == {parked_id}
    by_error = operator.get("/console/api/executions", params={"error": "PaymentDeclined", "limit": 200}).json()
    assert declined_name in {e["name"] for e in by_error["executions"]}
    assert {e["error"] for e in by_error["executions"]} == {"PaymentDeclined"}
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert operator.get("/console/api/executions", params={"since": future}).json()["executions"] == []
    assert operator.get("/console/api/executions", params={"until": "2000-01-01"}).json()["executions"] == []

    # Pagination: pages of one, newest first, no row twice, every row once.
    declined_payment(live)
    listed = operator.get("/console/api/executions", params={"limit": 200, "since": began}).json()
    assert listed["next"] is None  # this test's executions: one page holds them all
    everything = listed["executions"]
    assert len(everything) >= 3
    seen: list[str] = []
    cursor: str | None = None
    for _ in everything:
        params: dict[str, str | int] = {"limit": 1, "since": began, **({"cursor": cursor} if cursor else {})}
        page = operator.get("/console/api/executions", params=params).json()
        assert len(page["executions"]) == 1
        seen.append(page["executions"][0]["name"])
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [e["name"] for e in everything] and cursor is None
    started = [e["started_at"] for e in everything]
    assert started == sorted(started, reverse=True)

    for params, parameter in (({"status": "BROKEN"}, "status"), ({"since": "yesterday"}, "since"),
                              ({"limit": "0"}, "limit"), ({"limit": "201"}, "limit"),
                              ({"payment": "12x"}, "payment"), ({"cursor": "%%%"}, "cursor"),
                              ({"cursor": "WzFd"}, "cursor"), ({"merchant": "a b"}, "merchant"),
                              ({"needs_attention": "maybe"}, "needs_attention"), ({"error": "<script>"}, "error"),
                              ({"since": "2026-12-03T10:00Z", "until": "2026-12-03T09:00Z"}, "until")):
        bad = operator.get("/console/api/executions", params=params)
        assert bad.status_code == 400, (params, bad.text)
        assert bad.json()["error"]["field"] == parameter


def test_one_execution_shows_its_timeline_payment_journal_and_events_redacted(
        live: LiveStack, viewer: httpx.Client) -> None:
    payment_id, name = declined_payment(live)
    answer = viewer.get(f"/console/api/executions/{name}")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["execution"]["name"] == name and body["execution"]["status"] == "FAILED"
    assert body["payment"]["id"] == payment_id and body["payment"]["status"] == "failed"
    assert "payment_method_token" not in body["payment"]
    assert "tok_decline" not in answer.text  # the card token is masked wherever it appears
    steps = body["timeline"]["steps"]
    assert steps and steps[0]["entered_at"] and {s["status"] for s in steps} <= {"succeeded", "failed", "caught",
                                                                               "running"}
    assert body["timeline"]["error"] == "PaymentDeclined"
    assert [j["transaction_kind"] for j in body["journal"]][:1] == ["reserve"]
    assert [e["type"] for e in body["events"]] == ["payment.failed"]
    arn = body["execution"]["execution_arn"]
    assert viewer.get(f"/console/api/executions/{arn}").json()["execution"]["name"] == name  # the ARN works too
    missing = viewer.get("/console/api/executions/no-such-execution")
    assert missing.status_code == 404 and missing.json()["error"]["field"] == "execution"


def test_replay_is_for_operators_with_the_csrf_token_and_a_reason_and_is_audited(
        live: LiveStack, operator: httpx.Client, viewer: httpx.Client) -> None:
    payment_id, name = parked_payment(live)
    path = f"/console/api/executions/{name}/replay"
    viewer_token = viewer.get("/console/api/session").json()["csrf_token"]
    refused = viewer.post(path, json={"reason": "try"}, headers={"X-CSRF-Token": viewer_token})
    assert refused.status_code == 403 and refused.json()["error"]["type"] == "Forbidden"
    token = operator.get("/console/api/session").json()["csrf_token"]
    no_token = operator.post(path, json={"reason": "try"})
    assert no_token.status_code == 403 and no_token.json()["error"]["field"] == "X-CSRF-Token"
    no_reason = operator.post(path, json={"reason": "  "}, headers={"X-CSRF-Token": token})
    assert no_reason.status_code == 400 and no_reason.json()["error"]["field"] == "reason"
    assert operator.get(path).status_code == 405

    done = operator.post(path, json={"reason": "commit failed: database restarted"}, headers={"X-CSRF-Token": token})
    assert done.status_code == 200, done.text
    outcome = done.json()
    assert outcome["status"] == "SUCCEEDED" and outcome["payment_status"] == "succeeded"

    again = operator.post(path, json={"reason": "once more"}, headers={"X-CSRF-Token": token})
    assert again.status_code == 409 and "nothing to replay" in again.json()["error"]["message"]

    audit = operator.get("/console/api/audit", params={"execution": name}).json()["audit"]
    operator_name = operator.get("/console/api/session").json()["operator"]
    mine = [a for a in audit if a["reason"] == "commit failed: database restarted"]
    assert [a["action"] for a in mine] == ["finished", "requested"]
    assert all(a["operator"] == operator_name for a in mine)
    assert mine[0]["new_execution_arn"] == outcome["execution_arn"]
    refusal = [a for a in audit if a["reason"] == "once more" and a["action"] == "finished"]
    assert refusal and refusal[0]["outcome"] == "refused"
    shown = operator.get(f"/console/api/executions/{name}").json()
    assert outcome["name"] in {e["name"] for e in shown["other_executions"]}
    assert shown["payment"]["id"] == payment_id and shown["payment"]["status"] == "succeeded"


def test_audit_parked_and_discrepancies_paginate(live: LiveStack, operator: httpx.Client) -> None:
    parked_payment(live)
    parked_payment(live)
    first = operator.get("/console/api/parked", params={"limit": 1}).json()
    assert len(first["payments"]) == 1 and first["next"]
    second = operator.get("/console/api/parked", params={"limit": 1, "cursor": first["next"]}).json()
    assert len(second["payments"]) == 1 and second["payments"][0]["id"] != first["payments"][0]["id"]
    assert first["payments"][0]["created_at"] <= second["payments"][0]["created_at"]  # oldest first
    assert all(p["status"] == "needs_attention" for p in first["payments"] + second["payments"])

    audit = operator.get("/console/api/audit", params={"limit": 1}).json()
    if audit["next"]:
        older = operator.get("/console/api/audit", params={"limit": 1, "cursor": audit["next"]}).json()
        assert older["audit"][0]["id"] < audit["audit"][0]["id"]
    assert operator.get("/console/api/audit", params={"execution": "nope"}).json()["error"]["field"] == "execution"

    with live.engine.begin() as conn:
        run = conn.execute(text("INSERT INTO recon_runs (schedule, as_of, source) VALUES ('manual', now(), "
                                "'postgresql') RETURNING id")).scalar_one()
        for subject in (f"console-test-{run}-1", f"console-test-{run}-2"):
            conn.execute(text("INSERT INTO recon_discrepancies (kind, gateway, subject, currency, expected_minor, "
                              "settled_minor, detail, opened_run_id, last_seen_run_id) VALUES ('amount_mismatch', "
                              "'sandbox', :s, 'EUR', 100, 90, 'settled less', :run, :run)"),
                         {"s": subject, "run": run})
    page = operator.get("/console/api/discrepancies", params={"limit": 1}).json()
    assert len(page["discrepancies"]) == 1 and page["next"]
    following = operator.get("/console/api/discrepancies", params={"limit": 1, "cursor": page["next"]}).json()
    assert following["discrepancies"][0]["discrepancy_id"] < page["discrepancies"][0]["discrepancy_id"]
    assert {d["status"] for d in page["discrepancies"] + following["discrepancies"]} == {"open"}
    assert operator.get("/console/api/discrepancies", params={"cursor": "x"}).status_code == 400


def test_overview_counts_payments_per_minute_and_step_latency(live: LiveStack, viewer: httpx.Client) -> None:
    declined_payment(live)
    body = viewer.get("/console/api/overview").json()
    assert len(body["minutes"]) == 61
    assert set(body["payments_per_minute"]) == {"succeeded", "failed", "attention", "other"}
    assert sum(body["payments_per_minute"]["failed"]) >= 1
    states = {s["state"]: s for s in body["step_latency_ms"]}
    assert states and all(0 <= s["p50"] <= s["p95"] for s in states.values())
    page = viewer.get("/console")
    assert page.status_code == 200 and "<svg" in page.text and "<script" not in page.text
