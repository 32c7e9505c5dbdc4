"""The gateways' credentials: from the environment off AWS, from one Secrets Manager secret on AWS
(GATEWAY_SECRETS_ARN: JSON whose keys are the variable names), read once per process and never logged."""

from __future__ import annotations

import functools
import json
from typing import Final

from pydantic import SecretStr

from core.aws import client
from core.settings import Settings

# The secret's keys, each the name of the setting it fills (Settings field <- environment variable).
SECRET_KEYS: Final[dict[str, str]] = {
    "STRIPE_API_KEY": "stripe_api_key",
    "STRIPE_WEBHOOK_SECRET": "stripe_webhook_secret",
    "ADYEN_API_KEY": "adyen_api_key",
    "ADYEN_HMAC_KEY": "adyen_hmac_key",
}


@functools.cache
def with_gateway_secrets(settings: Settings) -> Settings:
    """`settings` with the gateway secrets filled in from GATEWAY_SECRETS_ARN where the environment has none."""
    if settings.gateway_secrets_arn is None:
        return settings
    raw = client("secretsmanager", settings).get_secret_value(SecretId=settings.gateway_secrets_arn)["SecretString"]
    stored = json.loads(raw)
    if not isinstance(stored, dict):
        raise ValueError("GATEWAY_SECRETS_ARN must name a JSON object secret")
    filled = {field: SecretStr(str(stored[key])) for key, field in SECRET_KEYS.items()
              if stored.get(key) and getattr(settings, field) is None}
    return settings.model_copy(update=filled)
