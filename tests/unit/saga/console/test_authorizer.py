"""The console authorizer's parts that need no database: reading the session cookie, the policy it answers
(tests/integration/saga/console/test_authorizer.py runs it against sessions in PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from saga.console.authorizer import COOKIE_NAME, policy, session_token
from store.operators import Operator, Session

ARN = "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/GET/console/executions"


@pytest.mark.parametrize(("headers", "multi", "token"), [
    ({"Cookie": f"{COOKIE_NAME}=tok123"}, None, "tok123"),
    ({"cookie": f"theme=dark; {COOKIE_NAME}=tok123; other=1"}, None, "tok123"),
    ({"COOKIE": f'{COOKIE_NAME}="tok123"'}, None, "tok123"),
    (None, {"Cookie": ["a=b", f"{COOKIE_NAME}=tok123"]}, "tok123"),
    ({"Cookie": f"x{COOKIE_NAME}=nope; {COOKIE_NAME}x=nope"}, None, None),
    ({"Cookie": f"{COOKIE_NAME}="}, None, None),
    ({"Cookie": COOKIE_NAME}, None, None),
    ({"Authorization": f"{COOKIE_NAME}=tok123"}, None, None),
    ({}, {}, None),
    (None, None, None),
])
def test_the_session_cookie_is_read_from_the_cookie_header(headers: dict[str, str] | None,
                                                          multi: dict[str, list[str]] | None,
                                                          token: str | None) -> None:
    assert session_token(headers, multi) == token


def test_allow_names_the_operator_and_deny_names_no_one() -> None:
    session = Session(Operator(7, "alice", "viewer", datetime(2026, 12, 3, tzinfo=UTC)), "csrf", datetime.now(UTC))
    allow = policy("Allow", ARN, session)
    assert allow == {
        "principalId": "alice",
        "policyDocument": {"Version": "2012-10-17",
                           "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": ARN}]},
        "context": {"operator": "alice", "role": "viewer"},
    }
    deny = policy("Deny", ARN, None)
    assert deny["policyDocument"]["Statement"][0]["Effect"] == "Deny" and "context" not in deny
    assert "csrf" not in str(allow)  # the CSRF token stays with the session, never in API Gateway's context
