"""The gateway port, traced: every call a subsegment ``gateway.<operation>`` annotated with the gateway and the
operation, under which the HTTP request its SDK sends (requests, httpx: patched by core.observability) is the
gateway's node on the X-Ray service map. steps.deps wraps the adapters in it on Lambda only; off Lambda (nothing is
traced there) the steps use the adapters as they are."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from core import observability
from steps.gateway.port import Gateway, GatewayResult, PaymentSnapshot, RefundSnapshot

__all__ = ["TracedGateway", "traced"]


class TracedGateway:
    """A Gateway that delegates every call to `inner` inside its subsegment."""

    name: str
    lookup_is_complete: bool

    def __init__(self, inner: Gateway) -> None:
        self.inner = inner
        self.name = inner.name
        self.lookup_is_complete = inner.lookup_is_complete

    @contextmanager
    def _call(self, operation: str) -> Iterator[None]:
        with observability.subsegment(f"gateway.{operation}", remote=False, gateway=self.name, operation=operation):
            yield

    def authorize(self, *, payment_id: str, amount_minor: int, currency: str, card_token: str) -> GatewayResult:
        with self._call("authorize"):
            return self.inner.authorize(payment_id=payment_id, amount_minor=amount_minor, currency=currency,
                                        card_token=card_token)

    def capture(self, *, payment_id: str, gateway_reference: str, amount_minor: int, currency: str) -> GatewayResult:
        with self._call("capture"):
            return self.inner.capture(payment_id=payment_id, gateway_reference=gateway_reference,
                                      amount_minor=amount_minor, currency=currency)

    def cancel(self, *, payment_id: str, gateway_reference: str) -> GatewayResult:
        with self._call("cancel"):
            return self.inner.cancel(payment_id=payment_id, gateway_reference=gateway_reference)

    def refund(
        self,
        *,
        payment_id: str,
        gateway_reference: str,
        amount_minor: int,
        currency: str,
        refund_id: str | None = None,
    ) -> GatewayResult:
        with self._call("refund"):
            return self.inner.refund(payment_id=payment_id, gateway_reference=gateway_reference,
                                     amount_minor=amount_minor, currency=currency, refund_id=refund_id)

    def lookup_refund(
        self, *, payment_id: str, gateway_reference: str, refund_id: str, operation_reference: str | None = None
    ) -> RefundSnapshot | None:
        with self._call("lookup_refund"):
            return self.inner.lookup_refund(payment_id=payment_id, gateway_reference=gateway_reference,
                                            refund_id=refund_id, operation_reference=operation_reference)

    def lookup(self, *, payment_id: str, gateway_reference: str | None = None) -> PaymentSnapshot | None:
        with self._call("lookup"):
            return self.inner.lookup(payment_id=payment_id, gateway_reference=gateway_reference)

    def close(self) -> None:
        self.inner.close()


def traced(gateway: Gateway, *, tracing: bool | None = None) -> Gateway:
    """`gateway` traced where traces are taken (`tracing`: core.observability.tracing_enabled() unless given)."""
    on = observability.tracing_enabled() if tracing is None else tracing
    return TracedGateway(gateway) if on else gateway
