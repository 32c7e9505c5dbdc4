"""Webhook delivery for the local Stripe server: localstripe's events, completed, plus the ones it never sends.

localstripe POSTs signed events to the webhooks configured on it (``POST /_config/webhooks/{id}`` with ``url``,
``secret``, optional ``events``), but only two that matter here (``payment_intent.payment_failed`` on a decline,
``payment_intent.succeeded`` on a capture) and with its incomplete PaymentIntents (no ``amount_received``, no
``decline_code``). So the front registers itself with localstripe as the receiver (``/_relay/webhooks/{id}``, under a
secret of its own), completes each event's object as it completes its API answers, signs it again with the endpoint's
secret and delivers it; and it sends, for the operations it forwarded, the events localstripe lacks:

| after                              | event (``data.object``)                                                  |
|------------------------------------|--------------------------------------------------------------------------|
| an authorization (requires_capture) | ``payment_intent.amount_capturable_updated`` (the PaymentIntent)        |
| a cancel                           | ``payment_intent.canceled`` (the PaymentIntent)                          |
| a refund                           | ``charge.refunded`` (the Charge, its refunds newest first)               |

Every event carries the PaymentIntent's metadata (``payment_id``) where the object has it: the PaymentIntent's own,
the Refund's; a Charge has none, its ``payment_intent`` names the payment. Deliveries are tried once, bounded by
``DELIVERY_TIMEOUT_S``; a failure is logged (without the secret), not retried.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from local.server_db import JsonDict
from local.stripe.signing import sign

_log = logging.getLogger(__name__)

DELIVERY_TIMEOUT_S = 5.0
API_VERSION = "2017-08-15"  # what localstripe's own events say


@dataclass(frozen=True)
class Endpoint:
    url: str
    secret: str
    events: frozenset[str] | None = None  # None: every event

    def wants(self, event_type: str) -> bool:
        return self.events is None or event_type in self.events


def endpoint_from(config: Any) -> Endpoint | None:
    """An endpoint from localstripe's configuration body (``url``, ``secret``, ``events``), None if it is invalid."""
    if not isinstance(config, dict):
        return None
    url, secret, events = config.get("url"), config.get("secret"), config.get("events")
    if not isinstance(url, str) or not url.startswith("http") or not isinstance(secret, str) or not secret:
        return None
    if events is not None and not (isinstance(events, list) and all(isinstance(e, str) for e in events)):
        return None
    return Endpoint(url, secret, None if events is None else frozenset(events))


def _signature_valid(body: bytes, header: str, secret: str) -> bool:
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    timestamp = fields.get("t", "")
    if not timestamp.isdigit():
        return False
    expected = sign(body, secret, int(timestamp))
    return hmac.compare_digest(expected, f"t={timestamp},v1={fields.get('v1', '')}")


class WebhookRelay:
    def __init__(self, upstream: httpx.AsyncClient, complete: Callable[[Any], None]) -> None:
        self._upstream = upstream
        self._complete = complete  # the front's completion of localstripe's objects
        self._endpoints: dict[str, Endpoint] = {}
        self._secret = "whsec_relay_" + secrets.token_hex(16)  # between localstripe and us only
        self._client = httpx.AsyncClient(timeout=DELIVERY_TIMEOUT_S)
        self._deliveries: set[asyncio.Task[None]] = set()

    @property
    def active(self) -> bool:
        return bool(self._endpoints)

    async def aclose(self) -> None:
        if self._deliveries:
            await asyncio.wait(self._deliveries, timeout=DELIVERY_TIMEOUT_S)
        await self._client.aclose()

    async def register(self, hook_id: str, endpoint: Endpoint, front_url: str) -> int:
        """Have localstripe send ``hook_id``'s events to us; the HTTP status localstripe answered."""
        relay = {"url": f"{front_url.rstrip('/')}/_relay/webhooks/{hook_id}", "secret": self._secret}
        response = await self._upstream.post(f"/_config/webhooks/{hook_id}", json=relay)
        if response.status_code == 200:
            self._endpoints[hook_id] = endpoint
        return response.status_code

    async def relay(self, hook_id: str, body: bytes, signature: str) -> int:
        """One event from localstripe: check it is localstripe's, complete it, deliver it; our answer's status."""
        endpoint = self._endpoints.get(hook_id)
        if endpoint is None:
            return 404
        if not _signature_valid(body, signature, self._secret):
            return 400
        try:
            event = json.loads(body)
        except ValueError:
            return 400
        if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
            return 400
        self._complete(event["data"].get("object"))
        await self._deliver(endpoint, event)
        return 200

    def emit(self, event_type: str, obj: JsonDict, idempotency_key: str | None) -> None:
        """Send an event localstripe does not (in the background, as Stripe does)."""
        if not self._endpoints:
            return
        event = {
            "id": "evt_" + secrets.token_hex(12),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(time.time()),
            "data": {"object": json.loads(json.dumps(obj))},  # a copy: the answer stays as it was saved
            "livemode": False,
            "pending_webhooks": len(self._endpoints),
            "request": {"id": None, "idempotency_key": idempotency_key},
            "type": event_type,
        }
        for endpoint in self._endpoints.values():
            task = asyncio.create_task(self._deliver(endpoint, event))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, endpoint: Endpoint, event: JsonDict) -> None:
        event_type = str(event.get("type"))
        if not endpoint.wants(event_type):
            return
        payload = json.dumps(event).encode("utf-8")
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign(payload, endpoint.secret, int(time.time())),
        }
        try:
            response = await self._client.post(endpoint.url, content=payload, headers=headers)
        except httpx.HTTPError as failed:
            _log.warning("webhook %s to %s failed: %s", event_type, endpoint.url, type(failed).__name__)
            return
        if response.status_code >= 300:
            _log.warning("webhook %s to %s answered %d", event_type, endpoint.url, response.status_code)
