"""What each local gateway itself holds, read the same way whatever the gateway: its call log (rows shaped like the
sandbox's) and its view of one payment (the sandbox's lookup shape). The end-to-end tests and the simulation compare
the saga's records with these."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["GatewayViews"]


@dataclass(frozen=True)
class GatewayViews:
    """Base URLs of the running local gateways (the stack's parts) and Stripe's key (its view is the PaymentIntent,
    read through the adapter, as the saga reads it)."""

    urls: dict[str, str]  # gateway name -> base URL
    stripe_api_key: str | None
    http: httpx.Client

    def calls(self, gateway: str, payment_id: str | None = None) -> list[dict[str, Any]]:
        path = "/_sandbox/calls" if gateway == "sandbox" else "/_calls"
        params = {"payment_id": payment_id} if payment_id is not None else {}
        response = self.http.get(self.urls[gateway] + path, params=params)
        response.raise_for_status()
        calls: list[dict[str, Any]] = response.json()["calls"]
        return calls

    def snapshot(self, gateway: str, payment_id: str) -> dict[str, Any] | None:
        """status, captured_minor, refunded_minor (and more) of the payment at the gateway; None if never taken."""
        if gateway == "stripe":
            return self._stripe_snapshot(payment_id)
        path = f"/v1/payments/{payment_id}" if gateway == "sandbox" else f"/_payments/{payment_id}"
        response = self.http.get(self.urls[gateway] + path)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def _stripe_snapshot(self, payment_id: str) -> dict[str, Any] | None:
        from steps.gateway.stripe import StripeGateway  # noqa: PLC0415  # the SDK only when asked

        assert self.stripe_api_key is not None, "Stripe's view needs the local Stripe key"
        with StripeGateway(api_key=self.stripe_api_key, api_base=self.urls["stripe"], timeout_ms=10_000) as stripe:
            found = stripe.lookup(payment_id=payment_id)
        if found is None:
            return None
        return {"payment_id": payment_id, "gateway_reference": found.gateway_reference, "status": found.status.value,
                "amount_minor": found.amount_minor, "currency": found.currency,
                "captured_minor": found.captured_minor, "refunded_minor": found.refunded_minor}
