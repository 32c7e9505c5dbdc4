"""What the real gateways need on AWS: their credentials in one Secrets Manager secret, the webhook function behind
POST /v1/webhooks/{gateway}, and the payment-status sync on an EventBridge schedule."""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from core import limits
from infra.functions import FunctionBase, make_function

# Saga's one resolver answers the webhook routes too; its own function keeps webhooks apart from checkouts (their
# own concurrency, logs and alarms) and is the only one besides the steps that reads the gateway secret.
WEBHOOK_HANDLER: Final[str] = "saga.handler.handler"
SYNC_HANDLER: Final[str] = "saga.sync.handler"
# A webhook stores and applies a few notices: short. The sync replays payments one after another.
WEBHOOK_TIMEOUT: Final[Duration] = Duration.seconds(30)
SYNC_TIMEOUT: Final[Duration] = Duration.seconds(limits.START_FUNCTION_TIMEOUT_S)
SECRET_KEYS: Final[tuple[str, ...]] = ("STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET", "ADYEN_API_KEY", "ADYEN_HMAC_KEY")


class GatewayIntegration(Construct):
    def __init__(self, scope: Construct, construct_id: str, base: FunctionBase, *, webhook_function_name: str,
                 sync_function_name: str, secret_name: str) -> None:
        super().__init__(scope, construct_id)
        # Made empty (each key a placeholder); an operator puts the real keys in after the first deploy.
        self.secret = secretsmanager.Secret(
            self, "Secret", secret_name=secret_name,
            description="paysaga gateway credentials: " + ", ".join(SECRET_KEYS),
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template="{" + ", ".join(f'"{k}": ""' for k in SECRET_KEYS[1:]) + "}",
                generate_string_key=SECRET_KEYS[0], exclude_punctuation=True),
        )
        self.webhook = make_function(self, "Webhook", base, name=webhook_function_name, handler=WEBHOOK_HANDLER,
                                     timeout=WEBHOOK_TIMEOUT, memory_mb=512, reserved_concurrency=20)
        self.sync = make_function(self, "Sync", base, name=sync_function_name, handler=SYNC_HANDLER,
                                  timeout=SYNC_TIMEOUT, memory_mb=512, reserved_concurrency=1)
        self.schedule = events.Rule(
            self, "SyncSchedule",
            description="paysaga payment-status sync: nothing stays pending",
            schedule=events.Schedule.rate(Duration.millis(limits.SYNC_INTERVAL_MS)),
            targets=[targets.LambdaFunction(self.sync, retry_attempts=0)],  # the next run is the retry
        )

    def grant_read(self, *functions: lambda_.IFunction) -> None:
        for function in functions:
            self.secret.grant_read(function)
