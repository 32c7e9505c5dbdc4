"""What the real gateways need on AWS: their credentials in one Secrets Manager secret, the webhook function behind
POST /v1/webhooks/{gateway}, and the payment-status sync on an EventBridge schedule."""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_secretsmanager as secretsmanager
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from core import limits, telemetry_names
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
                 sync_function_name: str, secret_name: str, webhook_concurrency: int) -> None:
        super().__init__(scope, construct_id)
        # Made empty (each key a placeholder); an operator puts the real keys in after the first deploy.
        self.secret = secretsmanager.Secret(
            self, "Secret", secret_name=secret_name,
            description="paysaga gateway credentials: " + ", ".join(SECRET_KEYS),
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template="{" + ", ".join(f'"{k}": ""' for k in SECRET_KEYS[1:]) + "}",
                generate_string_key=SECRET_KEYS[0], exclude_punctuation=True),
        )
        NagSuppressions.add_resource_suppressions(self.secret, [NagPackSuppression(
            id="AwsSolutions-SMG4",
            reason="third-party credentials (Stripe and Adyen API keys, webhook secrets): only the gateways' "
                   "dashboards can issue new ones, so an operator rotates them there and puts them in; no rotation "
                   "function could")])
        self.webhook = make_function(self, "Webhook", base, name=webhook_function_name, handler=WEBHOOK_HANDLER,
                                     timeout=WEBHOOK_TIMEOUT, memory_mb=512, reserved_concurrency=webhook_concurrency,
                                     service=telemetry_names.SERVICE_WEBHOOKS,
                                     description="POST /v1/webhooks/{gateway}: the gateways' events, verified and "
                                                 "applied")
        self.sync = make_function(self, "Sync", base, name=sync_function_name, handler=SYNC_HANDLER,
                                  timeout=SYNC_TIMEOUT, memory_mb=512, reserved_concurrency=1,
                                  service=telemetry_names.SERVICE_SYNC,
                                  description="payment-status sync: resolves what is left pending, once a minute")
        self.schedule = events.Rule(
            self, "SyncSchedule",
            description="paysaga payment-status sync: nothing stays pending",
            schedule=events.Schedule.rate(Duration.millis(limits.SYNC_INTERVAL_MS)),
            targets=[targets.LambdaFunction(self.sync, retry_attempts=0)],  # the next run is the retry
        )
        NagSuppressions.add_resource_suppressions(self.schedule, [NagPackSuppression(
            id="Serverless-EventBusDLQ",
            reason="a missed sync run needs no replay: the next run, a minute later, looks at everything still "
                   "pending (saga/sync.py is idempotent and stateless between runs)")])
        NagSuppressions.add_resource_suppressions(self.sync, [NagPackSuppression(
            id="Serverless-LambdaDLQ",
            reason="invoked asynchronously by the schedule only: a failed run is not retried (retry_attempts=0) "
                   "because the next scheduled run is the retry; SyncFunctionErrors alarms on a failure")])
