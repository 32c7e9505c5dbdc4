"""The console's request checks without a stack: same-origin, the cookie's attributes, the security headers on every
answer, query validation naming the parameter, the charts' markup, and the local server's routing of /console."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.testclient import TestClient

from local.http.server import build_app
from saga.console.charts import latency_bars, stacked_columns
from saga.console.queries import BadQuery, encode_cursor, execution_filters
from saga.console.web import Answer, read_request, session_cookie


def request(method: str = "GET", path: str = "/console", headers: dict[str, str] | None = None,
            query: dict[str, list[str]] | None = None, body: str | None = None) -> Any:
    return read_request({"httpMethod": method, "path": path, "headers": headers or {},
                         "multiValueQueryStringParameters": query, "body": body})


@pytest.mark.parametrize(("headers", "expected"), [
    ({"Host": "c.example", "Sec-Fetch-Site": "same-origin"}, True),
    ({"Host": "c.example", "Sec-Fetch-Site": "cross-site", "Origin": "https://c.example"}, False),
    ({"Host": "c.example", "Sec-Fetch-Site": "same-site"}, False),
    ({"Host": "c.example", "Origin": "https://c.example"}, True),
    ({"Host": "c.example", "Origin": "https://evil.example"}, False),
    ({"Host": "c.example", "Origin": "null", "Referer": "https://c.example/console/x"}, True),
    ({"Host": "c.example", "Origin": "null"}, False),
    ({"Host": "c.example"}, False),
    ({"Origin": "https://c.example"}, False),
])
def test_same_origin(headers: dict[str, str], expected: bool) -> None:
    assert request("POST", headers=headers).same_origin() is expected


def test_the_cookie_and_the_headers_of_every_answer() -> None:
    assert session_cookie("t", secure=True) == "paysaga_console=t; HttpOnly; SameSite=Strict; Path=/console; Secure"
    assert "Secure" not in session_cookie("t", secure=False)
    assert "Max-Age=0" in session_cookie("", secure=True, max_age_s=0)
    answer = Answer(200, "x", "text/html", cookies=["a=1", "b=2"]).to_proxy(on_aws=True)
    headers = answer["headers"]
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer" and headers["Cache-Control"] == "no-store"
    assert headers["Strict-Transport-Security"].startswith("max-age=")
    assert answer["multiValueHeaders"]["Set-Cookie"] == ["a=1", "b=2"]
    assert "Strict-Transport-Security" not in Answer(200, "x", "text/html").to_proxy(on_aws=False)["headers"]


def test_the_cookie_is_read_from_the_cookie_header() -> None:
    got = request(headers={"Cookie": "other=1; paysaga_console=abc; x=y"})
    assert got.cookie("paysaga_console") == "abc" and got.cookie("missing") is None


@pytest.mark.parametrize(("query", "parameter"), [
    ({"status": ["NOPE"]}, "status"), ({"since": ["soon"]}, "since"), ({"until": ["2026-13-01"]}, "until"),
    ({"limit": ["-1"]}, "limit"), ({"limit": ["500"]}, "limit"), ({"payment": ["99999999999999999999"]}, "payment"),
    ({"merchant": ["a/b"]}, "merchant"), ({"error": ["a b"]}, "error"), ({"needs_attention": ["perhaps"]},
                                                                         "needs_attention"),
    ({"cursor": ["!!"]}, "cursor"), ({"cursor": [encode_cursor([1])]}, "cursor"),
    ({"since": ["2026-12-03T10:00Z"], "until": ["2026-12-03T10:00Z"]}, "until"),
])
def test_bad_filters_name_their_parameter(query: dict[str, list[str]], parameter: str) -> None:
    with pytest.raises(BadQuery) as refused:
        execution_filters(request(query=query))
    assert refused.value.parameter == parameter


def test_good_filters_and_the_cursor_round_trip() -> None:
    started = datetime(2026, 12, 3, 14, 0, 1, 123456, tzinfo=UTC)
    cursor = encode_cursor([started.isoformat(), "arn:x:y"])
    filters = execution_filters(request(query={"status": ["failed"], "since": ["2026-12-03T13:00"], "payment": ["42"],
                                               "needs_attention": ["yes"], "limit": ["10"], "cursor": [cursor]}))
    assert filters.status == "FAILED" and filters.payment_id == 42 and filters.needs_attention and filters.limit == 10
    assert filters.since == datetime(2026, 12, 3, 13, 0, tzinfo=UTC)  # no zone: UTC
    assert filters.before == (started, "arn:x:y")
    assert filters.as_query()["needs_attention"] == "yes" and "cursor" not in filters.as_query()


def test_charts_are_svg_markup_without_style_or_script() -> None:
    markup = stacked_columns("t", ["10:00", "10:01"], [("succeeded", [3, 0]), ("failed", [1, 2])])
    markup += latency_bars("l", [("Authorize<script>", 5, 9)])
    assert markup.count("<svg") == 4 + 2  # two charts and their legends' keys
    assert "style=" not in markup and "<script" not in markup and "Authorize&lt;script&gt;" in markup
    assert len(re.findall(r'<rect class="s-(?:succeeded|failed)"', markup)) == 3 + 2  # bars and legend keys


def test_the_local_server_hands_console_paths_to_the_console_handler() -> None:
    def start(event: dict[str, Any], _: Any) -> dict[str, Any]:
        return {"statusCode": 200, "body": "start " + event["path"]}

    def console(event: dict[str, Any], _: Any) -> dict[str, Any]:
        return {"statusCode": 200, "body": "console " + event["path"],
                "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]}}

    client = TestClient(build_app(start, console=console))
    assert client.get("/console").text == "console /console"
    assert client.get("/console/executions/x").text == "console /console/executions/x"
    assert client.get("/consoles").text == "start /consoles"
    assert client.get("/v1/payments/1").text == "start /v1/payments/1"
    assert client.get("/console/api/session").headers.get_list("set-cookie") == ["a=1", "b=2"]


def test_links_redirects_and_the_cookie_carry_the_stage_of_the_url() -> None:
    """On the execute-api domain the URL has the stage before /console: every URL the console writes gets it too."""
    event = {"httpMethod": "GET", "path": "/console/executions", "headers": {},
             "requestContext": {"path": "/prod/console/executions", "stage": "prod"}}
    got = read_request(event)
    assert got.base == "/prod"
    assert read_request({**event, "requestContext": {"path": "/console/executions"}}).base == ""
    assert read_request({**event, "requestContext": {"path": "/a b/console/executions"}}).base == ""
    page = Answer(303, '<a href="/console/x">x</a><form action="/console/login"></form><p>/console</p>',
                  "text/html; charset=utf-8", headers={"Location": "/console/login"},
                  cookies=[session_cookie("t", secure=True)])
    result = page.to_proxy(on_aws=True, base=got.base)
    assert result["body"] == '<a href="/prod/console/x">x</a><form action="/prod/console/login"></form><p>/console</p>'
    assert result["headers"]["Location"] == "/prod/console/login"
    assert "; Path=/prod/console;" in result["multiValueHeaders"]["Set-Cookie"][0]
