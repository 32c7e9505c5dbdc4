"""``gateway_for``: the configured Gateway adapter."""

from __future__ import annotations

from core.settings import Settings
from steps.gateway.port import Gateway, GatewayNotConfigured
from steps.gateway.sandbox import DEFAULT_TIMEOUT_MS, SandboxGateway


def gateway_for(name: str, settings: Settings, *, timeout_ms: int = DEFAULT_TIMEOUT_MS) -> Gateway:
    """The adapter for ``name`` ("sandbox", "stripe", "adyen"; usually ``settings.gateway``)."""
    if name == "sandbox":
        if not settings.sandbox_gateway_url:
            raise GatewayNotConfigured("gateway 'sandbox' is not configured: set SANDBOX_GATEWAY_URL")
        return SandboxGateway(base_url=settings.sandbox_gateway_url, timeout_ms=timeout_ms)
    if name in ("stripe", "adyen"):
        raise GatewayNotConfigured(f"gateway {name!r} is not configured: its adapter is not written yet")
    raise GatewayNotConfigured(f"unknown gateway {name!r}: expected sandbox, stripe or adyen")
