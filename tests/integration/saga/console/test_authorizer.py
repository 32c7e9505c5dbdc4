"""The console's REQUEST authorizer against sessions in PostgreSQL: Allow with the operator for a live session, Deny
for no cookie, an unknown token, an idle or closed session, a removed operator; through its Lambda handler too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from core.limits import SESSION_IDLE_MS
from core.settings import Settings
from saga.console.authorizer import COOKIE_NAME, authorize, handler
from store.operators import close_session, create_operator, open_session, remove_operator

ARN = "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/POST/console/executions/pay-1-x/replay"


def _event(cookie: str | None) -> dict[str, object]:
    headers = {"Host": "example.com"} | ({"Cookie": cookie} if cookie is not None else {})
    return {"type": "REQUEST", "methodArn": ARN, "headers": headers, "path": "/console/executions"}


def _effect(answer: dict[str, object]) -> str:
    return answer["policyDocument"]["Statement"][0]["Effect"]  # type: ignore[index, no-any-return]


def test_a_live_session_is_allowed_with_its_operator_and_the_rest_denied(engine: Engine) -> None:
    opened_at = datetime.now(UTC)
    with engine.begin() as conn:
        alice = create_operator(conn, username="alice", password="a long password", role="operator")
        bob = create_operator(conn, username="bob", password="a long password", role="viewer")
        token, _ = open_session(conn, operator=alice, now=opened_at)
        closed, _ = open_session(conn, operator=alice, now=opened_at)
        close_session(conn, token=closed)
        removed, _ = open_session(conn, operator=bob, now=opened_at)
        assert remove_operator(conn, username="bob")

    allowed = authorize(engine, _event(f"theme=dark; {COOKIE_NAME}={token}"), now=lambda: opened_at)
    assert _effect(allowed) == "Allow" and allowed["principalId"] == "alice"
    assert allowed["context"] == {"operator": "alice", "role": "operator"}
    assert allowed["policyDocument"]["Statement"][0]["Resource"] == ARN  # type: ignore[index]

    for cookie in (None, "theme=dark", f"{COOKIE_NAME}=forged", f"{COOKIE_NAME}={closed}", f"{COOKIE_NAME}={removed}"):
        denied = authorize(engine, _event(cookie), now=lambda: opened_at)
        assert _effect(denied) == "Deny" and "context" not in denied, cookie
    idle_end = opened_at + timedelta(milliseconds=SESSION_IDLE_MS)
    assert _effect(authorize(engine, _event(f"{COOKIE_NAME}={token}"), now=lambda: idle_end)) == "Deny"


def test_the_lambda_handler_reads_the_database_of_its_settings(app_settings: Settings, engine: Engine,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    with engine.begin() as conn:
        carol = create_operator(conn, username="carol", password="a long password", role="viewer")
        token, _ = open_session(conn, operator=carol, now=datetime.now(UTC))
    allowed = handler(_event(f"{COOKIE_NAME}={token}"), None)
    assert _effect(allowed) == "Allow" and allowed["context"] == {"operator": "carol", "role": "viewer"}
    assert _effect(handler(_event(f"{COOKIE_NAME}=nope"), None)) == "Deny"
