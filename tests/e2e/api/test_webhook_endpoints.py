"""Merchant webhooks on the live stack: the merchant adds an endpoint over HTTP (the API server connects as the
functions' least-privileged user and allows loopback, as the stack sets it), pays, and the payment's event reaches a
receiver on loopback signed as README says; the CLI lists, resends and shows the attempts; rotate and remove."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import text

from local.testing.live import LiveStack
from saga.notifications.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER
from tests.e2e.api.support import post
from tests.integration.saga.webhook_support import receiver, verify


def _api(live: LiveStack, method: str, path: str, api_key: str, json_body: object = None) -> httpx.Response:
    return httpx.request(method, f"{live.api_url}{path}", headers={"Authorization": f"Bearer {api_key}"},
                         json=json_body, timeout=60)


def test_a_payment_s_event_reaches_the_merchant_s_endpoint_signed(live: LiveStack) -> None:
    merchant_id, api_key = live.new_merchant()
    _, other_key = live.new_merchant()
    with receiver([200]) as hook:
        made = _api(live, "POST", "/v1/webhook_endpoints", api_key, {"url": hook.url})
        assert made.status_code == 201, made.text
        endpoint_id, secret = made.json()["id"], made.json()["secret"]
        refused = _api(live, "POST", "/v1/webhook_endpoints", api_key, {"url": "http://169.254.169.254/latest"})
        assert refused.status_code == 400 and refused.json()["error"]["field"] == "url"
        assert _api(live, "DELETE", f"/v1/webhook_endpoints/{endpoint_id}", other_key).status_code == 404

        paid = post(live, api_key)
        assert paid.status_code == 201, paid.text
        with live.engine.connect() as conn:
            event_id = conn.execute(text("SELECT id FROM outbox WHERE payment_id = :p AND event_type = "
                                         "'payment.succeeded'"), {"p": int(paid.json()["id"])}).scalar_one()
        resent = live.cli("merchants", "webhooks", "resend", event_id, "--endpoint", endpoint_id)
        assert resent.returncode == 0, resent.stdout + resent.stderr
        delivered = live.cli("merchants", "webhooks", "deliver")
        assert delivered.returncode == 0, delivered.stdout + delivered.stderr

    ours = [r for r in hook.requests if r.headers[EVENT_ID_HEADER] == event_id]
    assert ours, [r.headers for r in hook.requests]
    assert len({r.body for r in ours}) == 1  # however often it came: the same bytes
    for request in ours:
        assert verify(request.headers[SIGNATURE_HEADER], request.body, secret, now=request.at)
    assert f'"id":"{event_id}"'.encode() in ours[0].body and merchant_id.encode() in ours[0].body

    shown = live.cli("merchants", "webhooks", "deliveries", endpoint_id)
    assert shown.returncode == 0 and "succeeded" in shown.stdout, shown.stdout + shown.stderr
    listed = live.cli("merchants", "webhooks", "list", merchant_id)
    assert endpoint_id in listed.stdout and secret not in listed.stdout

    rotated = _api(live, "POST", f"/v1/webhook_endpoints/{endpoint_id}/rotate_secret", api_key, {"overlap_hours": 0})
    assert rotated.status_code == 200 and rotated.json()["secret"] != secret
    assert re.fullmatch(r"whsec_[\w-]+", rotated.json()["secret"])
    assert [e["id"] for e in _api(live, "GET", "/v1/webhook_endpoints", api_key).json()["data"]] == [endpoint_id]
    assert _api(live, "POST", f"/v1/events/{event_id}/resend", other_key).status_code == 404
    assert _api(live, "DELETE", f"/v1/webhook_endpoints/{endpoint_id}", api_key).status_code == 200
    assert _api(live, "GET", "/v1/webhook_endpoints", api_key).json() == {"data": []}
