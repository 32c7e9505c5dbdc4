"""The merchant's webhook routes through the API's handler (as API Gateway calls it), on PostgreSQL: endpoints made
(the secret answered once), listed (never the secret), rotated, removed, events and failed deliveries sent again;
another merchant's endpoint or event is a 404."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import update
from ulid import ULID

from core.aws import LambdaHandler
from core.settings import Settings
from local.http.apigateway import new_context, to_event
from local.saga_runtime import local_services
from saga.handler import make_handler
from saga.merchant_keys import create_merchant
from saga.notifications.webhooks import enqueue_deliveries
from store import webhooks as records
from store.schema import webhook_deliveries
from tests.integration.saga.webhook_support import make_event


@pytest.fixture
def allow_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEBHOOKS_ALLOW_LOOPBACK", "true")


@pytest.fixture
def handle(allow_loopback: None, app_settings: Settings) -> Iterator[tuple[LambdaHandler, Any]]:
    services = local_services(app_settings)
    yield make_handler(services), services
    services.close()


def _call(handle: LambdaHandler, method: str, path: str, api_key: str,
          body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
    headers = [("Authorization", f"Bearer {api_key}"), ("Content-Type", "application/json")]
    event = to_event(method=method, path=path, query=[], headers=headers, source_ip="127.0.0.1",
                     body=json.dumps(body).encode() if body is not None else b"")
    answer = handle(event, new_context("paysaga-start"))
    return int(answer["statusCode"]), json.loads(answer["body"])


def test_the_merchant_manages_its_endpoints_and_resends(handle: tuple[LambdaHandler, Any]) -> None:
    call, services = handle
    with services.engine.begin() as conn:
        merchant_id, key = create_merchant(conn, name="Hooks", currencies=["EUR"], gateway="sandbox")
        _, other_key = create_merchant(conn, name="Other", currencies=["EUR"], gateway="sandbox")

    status, made = _call(call, "POST", "/v1/webhook_endpoints", key, {"url": "http://127.0.0.1:9/hook"})
    assert status == 201, made
    endpoint_id, secret = made["id"], made["secret"]
    assert endpoint_id.startswith("we_") and secret.startswith("whsec_") and made["secret_last4"] == secret[-4:]

    status, listed = _call(call, "GET", "/v1/webhook_endpoints", key)
    assert status == 200 and [e["id"] for e in listed["data"]] == [endpoint_id]
    assert "secret" not in listed["data"][0] and secret not in json.dumps(listed)
    assert _call(call, "GET", "/v1/webhook_endpoints", other_key) == (200, {"data": []})

    for url, why in (("http://10.0.0.1/hook", "private"), ("ftp://example.com/x", "http")):
        status, refused = _call(call, "POST", "/v1/webhook_endpoints", key, {"url": url})
        assert status == 400 and refused["error"]["field"] == "url" and why in refused["error"]["message"]
    status, refused = _call(call, "POST", "/v1/webhook_endpoints", key, {"uri": "http://127.0.0.1/"})
    assert status == 400 and refused["error"]["type"] == "BodyInvalid"
    assert _call(call, "POST", "/v1/webhook_endpoints", key)[0] == 400

    # Another merchant's endpoint does not exist for you.
    for method, path in (("DELETE", f"/v1/webhook_endpoints/{endpoint_id}"),
                         ("POST", f"/v1/webhook_endpoints/{endpoint_id}/rotate_secret"),
                         ("POST", f"/v1/webhook_endpoints/{endpoint_id}/resend_failed"),
                         ("POST", "/v1/webhook_endpoints/nonsense/rotate_secret")):
        status, missing = _call(call, method, path, other_key)
        assert status == 404 and missing["error"]["type"] == "WebhookEndpointNotFound", (method, path)

    status, rotated = _call(call, "POST", f"/v1/webhook_endpoints/{endpoint_id}/rotate_secret", key,
                            {"overlap_hours": 2})
    assert status == 200 and rotated["secret"] != secret and rotated["previous_secret_expires_at"] is not None
    assert _call(call, "POST", f"/v1/webhook_endpoints/{endpoint_id}/rotate_secret", key,
                 {"overlap_hours": 1_000})[0] == 400

    with services.engine.begin() as conn:
        event = make_event(conn, merchant_id=merchant_id)
        assert enqueue_deliveries(conn, event) == 1
        conn.execute(update(webhook_deliveries).where(webhook_deliveries.c.event_id == event.id)
                     .values(status="failed", attempts=7))
    assert _call(call, "POST", f"/v1/events/{event.id}/resend", other_key)[0] == 404
    assert _call(call, "POST", f"/v1/events/{ULID()}/resend", key)[0] == 404
    status, resent = _call(call, "POST", f"/v1/webhook_endpoints/{endpoint_id}/resend_failed", key)
    assert (status, resent) == (202, {"endpoint_id": endpoint_id, "deliveries": 1})
    status, resent = _call(call, "POST", f"/v1/events/{event.id}/resend", key)
    assert (status, resent) == (202, {"event_id": event.id, "deliveries": 1})
    with services.engine.connect() as conn:
        delivery = records.get_delivery(conn, event_id=event.id, endpoint_id=endpoint_id)
    assert delivery is not None and delivery.status == "pending" and delivery.attempts == 0

    status, removed = _call(call, "DELETE", f"/v1/webhook_endpoints/{endpoint_id}", key)
    assert status == 200 and removed["disabled_at"] is not None and "secret" not in removed
    assert _call(call, "GET", "/v1/webhook_endpoints", key) == (200, {"data": []})
    assert _call(call, "DELETE", f"/v1/webhook_endpoints/{endpoint_id}", key)[0] == 404
