"""Deployment settings read from CDK context (`cdk deploy -c key=value` or cdk.json), each with a safe default.

Nothing secret lives here: credentials come from Secrets Manager at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.gateways import GATEWAY_NAMES
from steps.registry import FUNCTION_NAME_PREFIX


@dataclass(frozen=True)
class Config:
    prefix: str = FUNCTION_NAME_PREFIX
    # PAYMENT_GATEWAY given to the functions, and the sandbox gateway's base URL when that one is used.
    gateway: str = "sandbox"
    sandbox_gateway_url: str = ""
    # Adyen's account and live checkout endpoint (https://<prefix>-checkout-live.adyenpayments.com/checkout/v71);
    # its API key and HMAC key, like Stripe's keys, go into the gateway secret after the first deploy.
    adyen_merchant_account: str = ""
    adyen_checkout_url: str = ""
    # A zip of the Python dependencies (`python/` inside), built in CI for the Lambda runtime; empty: no layer.
    dependencies_layer_zip: str = ""
    # Where alarms send mail; empty: the alarm topic has no subscription.
    alarm_email: str = ""
    # WAF rate rule: requests per client IP per 5-minute window.
    waf_requests_per_5min: int = 1_000
    aurora_min_acu: float = 0.5
    aurora_max_acu: float = 8.0
    # Reserved concurrency bounds the RDS Proxy's client connections and keeps headroom in the account's pool.
    start_concurrency: int = 100
    step_concurrency: int = 50
    compensation_concurrency: int = 10
    log_retention_days: int = 30

    def __post_init__(self) -> None:
        if self.gateway not in GATEWAY_NAMES:
            raise ValueError(f"context 'gateway' must be one of {GATEWAY_NAMES}, not {self.gateway!r}")
        if not 100 <= self.waf_requests_per_5min <= 2_000_000_000:
            raise ValueError("context 'waf_requests_per_5min' must be between 100 and 2e9 (WAF's bounds)")
        if not 0.5 <= self.aurora_min_acu <= self.aurora_max_acu <= 256:
            raise ValueError("context 'aurora_min_acu'/'aurora_max_acu' must satisfy 0.5 <= min <= max <= 256")
        for name in ("start_concurrency", "step_concurrency", "compensation_concurrency"):
            if not 1 <= getattr(self, name) <= 1_000:
                raise ValueError(f"context {name!r} must be between 1 and 1000")


def config_from_context(get: Any) -> Config:
    """Build Config from `node.try_get_context`; context values arrive as strings from the command line."""
    defaults = Config()
    values: dict[str, Any] = {}
    for name, default in vars(defaults).items():
        raw = get(name)
        if raw is None:
            continue
        values[name] = type(default)(raw)
    return Config(**values)
