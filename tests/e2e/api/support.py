"""Helpers for the start endpoint's HTTP tests: raw requests, bodies, and the rows a payment leaves behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import text
from ulid import ULID

from local.testing.live import LiveStack

TIMEOUT_S = 60
POLL_S = 0.02
_NEVER_SET = threading.Event()  # waited on with a timeout: a bounded poll interval


def body(**overrides: Any) -> dict[str, Any]:
    """A valid payment request; any field can be replaced."""
    return {"amount_minor": 1999, "currency": "EUR", "payment_method_token": "tok_approve",
            "customer_reference": f"cus_{ULID()}", "order_reference": f"ord_{ULID()}", **overrides}


def headers(api_key: str | None, key: str | None = "__new__") -> dict[str, str]:
    """Authorization (None leaves it out) and Idempotency-Key (a fresh one by default, None leaves it out)."""
    result: dict[str, str] = {}
    if api_key is not None:
        result["Authorization"] = f"Bearer {api_key}"
    if key is not None:
        result["Idempotency-Key"] = str(ULID()) if key == "__new__" else key
    return result


def post(live: LiveStack, api_key: str | None, *, key: str | None = "__new__",
         json_body: Any = None, content: bytes | None = None,
         extra_headers: dict[str, str] | None = None) -> httpx.Response:
    hdrs = {**headers(api_key, key), **(extra_headers or {})}
    if content is not None:
        hdrs.setdefault("Content-Type", "application/json")
        return httpx.post(f"{live.api_url}/v1/payments", content=content, headers=hdrs, timeout=TIMEOUT_S)
    return httpx.post(f"{live.api_url}/v1/payments", json=body() if json_body is None else json_body,
                      headers=hdrs, timeout=TIMEOUT_S)


def get(live: LiveStack, api_key: str | None, payment_id: str) -> httpx.Response:
    return httpx.get(f"{live.api_url}/v1/payments/{payment_id}", headers=headers(api_key, None), timeout=TIMEOUT_S)


def error_of(response: httpx.Response) -> dict[str, Any]:
    assert response.headers["content-type"] == "application/json", response.headers
    detail: dict[str, Any] = response.json()["error"]
    return detail


def no_traceback(response: httpx.Response) -> None:
    assert "Traceback" not in response.text, response.text
    assert response.status_code < 500 or response.status_code == 503, (response.status_code, response.text)


def merchant_payments(live: LiveStack, merchant_id: str) -> list[dict[str, Any]]:
    with live.engine.connect() as conn:
        rows = conn.execute(text("SELECT id, status FROM payments WHERE merchant_id = :m ORDER BY id"),
                            {"m": merchant_id}).mappings().all()
    return [dict(r) for r in rows]


def executions_of(live: LiveStack, payment_id: int) -> int:
    with live.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM saga_executions WHERE payment_id = :p"),
                                {"p": payment_id}).scalar_one())


def wait_until(condition: Callable[[], Any], *, timeout_s: float, what: str) -> Any:
    """Poll condition until it returns something truthy (bounded); that value."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout_s} s waiting for {what}"
        _NEVER_SET.wait(POLL_S)
