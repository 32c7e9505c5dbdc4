"""Payment gateways: the port (what a step may ask), the adapters, and the sandbox gateway server."""

from steps.gateway.factory import gateway_for
from steps.gateway.port import (
    DeclineReason,
    Gateway,
    GatewayError,
    GatewayNotConfigured,
    GatewayOutcomeUnknown,
    GatewayRejected,
    GatewayResult,
    GatewayStatus,
    GatewayUnreachable,
    Operation,
    PaymentSnapshot,
    RefundSnapshot,
    idempotency_key,
)
from steps.gateway.sandbox import SandboxGateway

__all__ = [
    "DeclineReason",
    "Gateway",
    "GatewayError",
    "GatewayNotConfigured",
    "GatewayOutcomeUnknown",
    "GatewayRejected",
    "GatewayResult",
    "GatewayStatus",
    "GatewayUnreachable",
    "Operation",
    "PaymentSnapshot",
    "RefundSnapshot",
    "SandboxGateway",
    "gateway_for",
    "idempotency_key",
]
