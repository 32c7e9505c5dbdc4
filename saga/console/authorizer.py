"""The console's API Gateway REQUEST authorizer (AWS): the operator's session cookie decides.

API Gateway calls it before every console route but the login form and its static files (infra/console.py), its
results uncached so a closed session ends at once. It reads the `paysaga_console` cookie from the Cookie header, finds
the live session (store.operators.find_session, which also moves its idle end on) and answers an Allow policy for the
method with the operator's name and role in the context (the console's handler sees them as
requestContext.authorizer.operator and .role, and checks the session again itself), or a Deny policy.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import Engine

from core import observability
from core import telemetry_names as names
from core.db import engine as db_engine
from core.settings import settings
from store.operators import Session, find_session

__all__ = ["COOKIE_NAME", "authorize", "handler", "policy", "session_token"]

COOKIE_NAME: Final = "paysaga_console"
ANONYMOUS: Final = "anonymous"


def session_token(headers: Mapping[str, Any] | None, multi_headers: Mapping[str, Any] | None = None) -> str | None:
    """The session cookie's value from the Cookie header(s) (HTTP header names are case-insensitive), or None."""
    values: list[str] = []
    for source in (headers or {}, multi_headers or {}):
        for name, value in source.items():
            if str(name).lower() == "cookie" and value:
                values.extend(value if isinstance(value, list) else [value])
    for header in values:
        for pair in str(header).split(";"):
            key, separator, token = pair.strip().partition("=")
            if separator and key == COOKIE_NAME and token.strip('"'):
                return token.strip('"')
    return None


def policy(effect: str, resource: str, session: Session | None) -> dict[str, Any]:
    """The authorizer's answer: `effect` (Allow or Deny) on `resource`, with the operator in the context."""
    answer: dict[str, Any] = {
        "principalId": session.operator.username if session is not None else ANONYMOUS,
        "policyDocument": {"Version": "2012-10-17",
                           "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}]},
    }
    if session is not None:
        answer["context"] = {"operator": session.operator.username, "role": session.operator.role}
    return answer


def authorize(engine: Engine, event: Mapping[str, Any], *, now: Callable[[], datetime] | None = None) -> dict[str, Any]:
    resource = str(event.get("methodArn", ""))
    token = session_token(event.get("headers"), event.get("multiValueHeaders"))
    session = None
    if token is not None:
        with engine.begin() as conn:
            session = find_session(conn, token=token, now=(now or (lambda: datetime.now(UTC)))())
    if session is None:
        return policy("Deny", resource, None)
    return policy("Allow", resource, session)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with observability.invocation("console-authorizer", context, service=names.SERVICE_CONSOLE):
        return authorize(db_engine(settings()), event)
