"""Deployment settings read from CDK context (`cdk deploy -c key=value` or cdk.json), each with a default that fits
a payments deployment (what a test synthesizes is what cdk.json deploys: tests/unit/infra/support.py).

Nothing secret lives here: credentials come from Secrets Manager at run time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from core.gateways import GATEWAY_NAMES
from steps.registry import FUNCTION_NAME_PREFIX

# Every physical name starts with the prefix (infra/names.py), and the strictest of them bound it: an ElastiCache
# replication group id (lowercase letters, digits, hyphens; at most 40 characters) and the Lambda function names
# (64 characters, the longest step name is 18).
PREFIX_PATTERN: Final[re.Pattern[str]] = re.compile(r"^[a-z](?:[a-z0-9]|-(?=[a-z0-9])){0,19}$")
# Lambda's default account concurrency is 1000, of which 100 must stay unreserved.
ACCOUNT_CONCURRENCY: Final[int] = 1_000
UNRESERVED_MINIMUM: Final[int] = 100
WORKFLOW_LOG_LEVELS: Final[tuple[str, ...]] = ("ALL", "ERROR")


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
    # The dependencies layer zip (`python/` inside) `make layer` builds; relative to the repository root. Synthesis
    # stops when it is missing (infra/code_asset.py).
    dependencies_layer_zip: str = "dist/dependencies-layer.zip"
    # Where alarms send mail; empty: the alarm topic has no subscription.
    alarm_email: str = ""
    # WAF rate rules, requests per 5-minute window. Per merchant API key: 100/s sustained, half the stage's throttle,
    # so one merchant (or a leaked key) cannot take every merchant's capacity. Per client IP: looser (a merchant's
    # checkout servers send from few addresses and meet their key's limit first); it stops one address flooding.
    waf_requests_per_api_key_per_5min: int = 30_000
    waf_requests_per_ip_per_5min: int = 60_000
    # Aurora Serverless v2: 1 ACU (2 GiB) at rest keeps the ledger's hot pages cached (0.5 ACU pauses nothing and
    # evicts them); 16 ACU is about 1,000 saga steps a second with headroom. The reader scales with the writer, so a
    # failover lands on an instance already sized for the load.
    aurora_min_acu: float = 1.0
    aurora_max_acu: float = 16.0
    # Automated backups (point-in-time restore) of the book of record: Aurora's maximum.
    backup_retention_days: int = 35
    # Reserved concurrency bounds the RDS Proxy's client connections and keeps headroom in the account's pool.
    start_concurrency: int = 100
    step_concurrency: int = 50
    compensation_concurrency: int = 10
    webhook_concurrency: int = 20
    # Payments: a year of logs (disputes and chargebacks arrive months later; PCI DSS 10.5.1 keeps audit logs for 12
    # months). Rounded up to a retention CloudWatch offers.
    log_retention_days: int = 365
    # How often Secrets Manager rotates the database passwords (PCI DSS 8.3.9: at most 90 days).
    secret_rotation_days: int = 30
    # The Express machines' CloudWatch Logs, from which the operations console builds an execution's timeline on AWS:
    # ALL logs every state entered and exited (a full timeline: states, retries, catches, durations); ERROR only what
    # failed. Execution data (each state's input and output) is off by default: about 23 KB a payment with merchant
    # and payment data in it; turn it on where engineers need inputs and outputs in the console (shown redacted).
    workflow_log_level: str = "ALL"
    workflow_log_execution_data: bool = False

    def __post_init__(self) -> None:
        if not PREFIX_PATTERN.match(self.prefix):
            raise ValueError(f"context 'prefix' must match {PREFIX_PATTERN.pattern} (lowercase letters, digits, single "
                             f"hyphens, at most 20 characters), not {self.prefix!r}")
        if self.gateway not in GATEWAY_NAMES:
            raise ValueError(f"context 'gateway' must be one of {GATEWAY_NAMES}, not {self.gateway!r}")
        for name in ("waf_requests_per_api_key_per_5min", "waf_requests_per_ip_per_5min"):
            if not 100 <= getattr(self, name) <= 2_000_000_000:
                raise ValueError(f"context {name!r} must be between 100 and 2e9 (WAF's bounds)")
        if self.waf_requests_per_ip_per_5min < self.waf_requests_per_api_key_per_5min:
            raise ValueError("context 'waf_requests_per_ip_per_5min' must be at least "
                             "'waf_requests_per_api_key_per_5min' (a merchant's few addresses carry all its key's "
                             "requests)")
        if not 0.5 <= self.aurora_min_acu <= self.aurora_max_acu <= 256:
            raise ValueError("context 'aurora_min_acu'/'aurora_max_acu' must satisfy 0.5 <= min <= max <= 256")
        if not 1 <= self.backup_retention_days <= 35:
            raise ValueError("context 'backup_retention_days' must be between 1 and 35 (Aurora's bounds)")
        for name in ("start_concurrency", "step_concurrency", "compensation_concurrency", "webhook_concurrency"):
            if not 1 <= getattr(self, name) <= ACCOUNT_CONCURRENCY - UNRESERVED_MINIMUM:
                raise ValueError(f"context {name!r} must be between 1 and {ACCOUNT_CONCURRENCY - UNRESERVED_MINIMUM}")
        if not 1 <= self.log_retention_days <= 3_653:
            raise ValueError("context 'log_retention_days' must be between 1 and 3653 (CloudWatch's ten years)")
        if not 1 <= self.secret_rotation_days <= 365:
            raise ValueError("context 'secret_rotation_days' must be between 1 and 365 (Secrets Manager's bounds)")
        if self.workflow_log_level not in WORKFLOW_LOG_LEVELS:
            raise ValueError(f"context 'workflow_log_level' must be one of {WORKFLOW_LOG_LEVELS}, "
                             f"not {self.workflow_log_level!r}")


def _boolean(raw: object) -> bool:
    """A context flag: true/false (the command line's strings, or cdk.json's booleans); nothing else."""
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text not in ("true", "false"):
        raise ValueError(text)
    return text == "true"


def config_from_context(get: Any) -> Config:
    """Build Config from `node.try_get_context`; context values arrive as strings from the command line."""
    defaults = Config()
    values: dict[str, Any] = {}
    for name, default in vars(defaults).items():
        raw = get(name)
        if raw is None:
            continue
        try:
            values[name] = _boolean(raw) if isinstance(default, bool) else type(default)(raw)
        except ValueError:
            raise ValueError(f"context {name!r} must be a {type(default).__name__}, not {raw!r}") from None
    return Config(**values)
