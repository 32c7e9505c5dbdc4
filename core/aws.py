"""boto3 clients built from settings: on AWS the default endpoints, locally the emulator on loopback."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boto3
from botocore.config import Config

from core.settings import Settings

# What a Lambda function's handler is, wherever one is passed around: handler(event, context) -> result.
LambdaHandler = Callable[[Any, Any], Any]

# Bounded everywhere: a stuck backend must not hang a payment forever.
_DEFAULT_CONFIG = Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 3, "mode": "standard"},
                         max_pool_connections=64)


def client(service: str, settings: Settings, config: Config | None = None) -> Any:
    """A boto3 client for service, pointed at AWS_ENDPOINT_URL when one is set."""
    return boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        config=_DEFAULT_CONFIG.merge(config) if config is not None else _DEFAULT_CONFIG,
    )
