"""Helpers of the console's end-to-end tests: operators, a logged-in HTTP client, a parked payment to replay."""

from __future__ import annotations

import secrets

import httpx
from sqlalchemy import text

from local.testing.live import LiveStack
from store.operators import create_operator
from tests.e2e.saga_support import pay
from tests.e2e.test_saga_faults import failing_outbox_inserts


def new_operator(live: LiveStack, role: str) -> tuple[str, str]:
    """(username, password) of a fresh operator with this role."""
    username, password = f"{role}-{secrets.token_hex(4)}", secrets.token_urlsafe(18)
    with live.engine.begin() as conn:
        create_operator(conn, username=username, password=password, role=role)
    return username, password


def origin(live: LiveStack) -> str:
    return live.api_url


def login(live: LiveStack, username: str, password: str) -> httpx.Client:
    """A client holding the session cookie of a login through the form, as a browser sends it."""
    client = httpx.Client(base_url=live.api_url, timeout=60, follow_redirects=False)
    answer = client.post("/console/login", data={"username": username, "password": password},
                         headers={"Origin": origin(live)})
    assert answer.status_code == 303, answer.text
    assert "paysaga_console" in client.cookies
    return client


def parked_payment(live: LiveStack) -> tuple[str, str]:
    """(payment id, failed execution's name) of a payment parked as needs_attention after its capture: PostgreSQL
    failed CommitLedger's transaction. A replay finishes it (succeeded)."""
    _, api_key = live.new_merchant()
    order = f"console-park-{secrets.token_hex(4)}"
    with failing_outbox_inserts(live, order):
        response = pay(live, api_key, order_reference=order)
    assert response.status_code == 202, response.text
    payment_id = response.json()["id"]
    with live.engine.connect() as conn:
        name = conn.execute(text("SELECT name FROM saga_executions WHERE payment_id = :id"),
                            {"id": int(payment_id)}).scalar_one()
    return payment_id, name


def declined_payment(live: LiveStack) -> tuple[str, str]:
    """(payment id, execution name) of a declined payment: a FAILED execution that ended as it should."""
    _, api_key = live.new_merchant()
    response = pay(live, api_key, token="tok_decline")
    assert response.status_code == 402, response.text
    payment_id = response.json()["payment"]["id"]
    with live.engine.connect() as conn:
        name = conn.execute(text("SELECT name FROM saga_executions WHERE payment_id = :id"),
                            {"id": int(payment_id)}).scalar_one()
    return payment_id, name
