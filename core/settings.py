"""One settings object, read from the environment.

The variable names are the ones the CDK stack gives the Lambda functions, so the same code runs on AWS and on the
embedded local stack: local mode changes values (endpoints), never code.
"""

from __future__ import annotations

import functools
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core import limits
from core.gateways import GatewayName


class SettingsError(RuntimeError):
    """A missing or malformed setting; the message names the environment variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore", frozen=True)

    # PostgreSQL: on AWS the RDS Proxy endpoint; credentials arrive in the URL built by the deployment.
    database_url: SecretStr = Field(validation_alias="DATABASE_URL")
    # On AWS the URL carries no password: the functions read it from this Secrets Manager secret (rotation-safe).
    database_secret_arn: str | None = Field(default=None, validation_alias="DATABASE_SECRET_ARN")
    # True when DATABASE_URL is an RDS Proxy endpoint: no startup options (the proxy refuses them; its init query and
    # the login role set the timeouts) and no server-side prepared statements (they pin the proxy's connections).
    database_proxy: bool = Field(default=False, validation_alias="DATABASE_PROXY")
    redis_url: str = Field(validation_alias="REDIS_URL")

    aws_region: str = Field(default="eu-west-1", validation_alias="AWS_REGION")
    # Set only off AWS: the emulator on loopback. boto3 itself also honours AWS_ENDPOINT_URL.
    aws_endpoint_url: str | None = Field(default=None, validation_alias="AWS_ENDPOINT_URL")

    idempotency_table: str = Field(default="paysaga-idempotency", validation_alias="IDEMPOTENCY_TABLE")
    worker_slots_table: str = Field(default="paysaga-worker-slots", validation_alias="WORKER_SLOTS_TABLE")
    notifications_queue: str = Field(default="paysaga-notifications.fifo", validation_alias="NOTIFICATIONS_QUEUE")
    notifications_dlq: str = Field(default="paysaga-notifications-dlq.fifo", validation_alias="NOTIFICATIONS_DLQ")
    notifications_topic: str = Field(default="paysaga-payment-events", validation_alias="NOTIFICATIONS_TOPIC")
    event_bus: str = Field(default="paysaga-payments", validation_alias="EVENT_BUS")

    # Empty means "run statemachine.asl.json on the local runtime"; on AWS the Express state machine's ARN.
    state_machine_arn: str | None = Field(default=None, validation_alias="STATE_MACHINE_ARN")
    # On AWS the operations' Express state machines (capture.asl.json, cancel.asl.json, refund.asl.json), where the
    # function starts them; empty off AWS, where the local runtime runs the same files.
    capture_state_machine_arn: str | None = Field(default=None, validation_alias="CAPTURE_STATE_MACHINE_ARN")
    cancel_state_machine_arn: str | None = Field(default=None, validation_alias="CANCEL_STATE_MACHINE_ARN")
    refund_state_machine_arn: str | None = Field(default=None, validation_alias="REFUND_STATE_MACHINE_ARN")
    # Off AWS only: the ASL file the local runtime executes (benchmarks swap in a trivial machine).
    local_state_machine_file: str | None = Field(default=None, validation_alias="LOCAL_STATE_MACHINE_FILE")

    # The gateway of a merchant created without one (each payment then uses its merchant's, recorded at start).
    gateway: GatewayName = Field(default="sandbox", validation_alias="PAYMENT_GATEWAY")
    # On AWS the gateways' credentials and webhook secrets are not in the environment: the adapters read them from
    # this Secrets Manager secret (JSON with STRIPE_API_KEY, STRIPE_WEBHOOK_SECRET, ADYEN_API_KEY, ADYEN_HMAC_KEY).
    gateway_secrets_arn: str | None = Field(default=None, validation_alias="GATEWAY_SECRETS_ARN")
    sandbox_gateway_url: str | None = Field(default=None, validation_alias="SANDBOX_GATEWAY_URL")
    stripe_api_key: SecretStr | None = Field(default=None, validation_alias="STRIPE_API_KEY")
    stripe_api_base: str | None = Field(default=None, validation_alias="STRIPE_API_BASE")
    # Verifies Stripe-Signature on POST /v1/webhooks/stripe (the endpoint's whsec_ secret).
    stripe_webhook_secret: SecretStr | None = Field(default=None, validation_alias="STRIPE_WEBHOOK_SECRET")
    adyen_api_key: SecretStr | None = Field(default=None, validation_alias="ADYEN_API_KEY")
    adyen_merchant_account: str | None = Field(default=None, validation_alias="ADYEN_MERCHANT_ACCOUNT")
    adyen_checkout_url: str | None = Field(default=None, validation_alias="ADYEN_CHECKOUT_URL")
    # Verifies each notification item's HMAC on POST /v1/webhooks/adyen (hex, as Adyen's Customer Area shows it).
    adyen_hmac_key: SecretStr | None = Field(default=None, validation_alias="ADYEN_HMAC_KEY")

    # The defaults below are core/limits.py's, where their relations to each other are asserted.
    gateway_timeout_ms: int = Field(default=limits.GATEWAY_TIMEOUT_MS, ge=100, le=60_000,
                                    validation_alias="GATEWAY_TIMEOUT_MS")
    # How long a request holds its Idempotency-Key before a retry may take over (longer than the start function lives).
    idempotency_in_progress_ttl_ms: int = Field(
        default=limits.IDEMPOTENCY_IN_PROGRESS_TTL_MS, ge=1_000, le=3_600_000,
        validation_alias="IDEMPOTENCY_IN_PROGRESS_TTL_MS")

    # How long one execution holds its payment (store.leases): longer than an Express execution can run and no longer
    # than the key's in-progress hold, so that a retry that takes the key over finds the lease free.
    execution_lease_ms: int = Field(default=limits.EXECUTION_LEASE_MS, ge=1_000, le=3_600_000,
                                    validation_alias="EXECUTION_LEASE_MS")
    # How long a start waits for another execution of the same payment to end before it answers 409 (under API
    # Gateway's integration timeout).
    lease_wait_ms: int = Field(default=limits.LEASE_WAIT_MS, ge=0, le=600_000, validation_alias="LEASE_WAIT_MS")
    # POST /v1/payments answers within this: a saga still running then gets 202 + Location (poll GET) and runs on.
    # 0 waits for the saga whatever it takes (the simulation, which checks every answer against the final state).
    start_answer_budget_ms: int = Field(default=limits.START_ANSWER_BUDGET_MS, ge=0, le=3_600_000,
                                        validation_alias="START_ANSWER_BUDGET_MS")

    # Merchant webhooks: let an endpoint's URL resolve to a loopback address (127.0.0.0/8, ::1). Off on AWS (server-side
    # request forgery); the local stack turns it on for tests and demos. Private, link-local and other non-public
    # addresses stay refused whatever it says.
    webhooks_allow_loopback: bool = Field(default=False, validation_alias="WEBHOOKS_ALLOW_LOOPBACK")
    webhook_timeout_ms: int = Field(default=limits.WEBHOOK_TIMEOUT_MS, ge=100, le=30_000,
                                    validation_alias="WEBHOOK_TIMEOUT_MS")

    # Reconciliation: the topic new discrepancies are announced on; on AWS the bucket settlement reports land in
    # (`settlements/<gateway>/...`) and the Firehose stream the ledger's entries land through (as Parquet, by date).
    recon_alerts_topic: str = Field(default="paysaga-recon-alerts", validation_alias="RECON_ALERTS_TOPIC")
    settlement_bucket: str | None = Field(default=None, validation_alias="SETTLEMENT_BUCKET")
    ledger_landing_stream: str | None = Field(default=None, validation_alias="LEDGER_LANDING_STREAM")

    # The operations console's session cookie is Secure (sent over HTTPS only) unless this is true: the local stack
    # serves the console over plain http on loopback and sets it; never on AWS.
    console_insecure_cookies: bool = Field(default=False, validation_alias="CONSOLE_INSECURE_COOKIES")

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", validation_alias="LOG_LEVEL")

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if not raw.startswith(("postgresql://", "postgresql+psycopg://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// or rediss:// URL")
        return value

    @field_validator("aws_endpoint_url")
    @classmethod
    def _endpoint_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        assert value is not None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @model_validator(mode="after")
    def _lease_within_key_hold(self) -> Settings:
        if self.execution_lease_ms > self.idempotency_in_progress_ttl_ms:
            raise ValueError(
                f"EXECUTION_LEASE_MS ({self.execution_lease_ms}) must not exceed IDEMPOTENCY_IN_PROGRESS_TTL_MS "
                f"({self.idempotency_in_progress_ttl_ms}): a retry that takes the key over must find the lease free")
        return self

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with the psycopg 3 driver named, as SQLAlchemy wants it."""
        raw = self.database_url.get_secret_value()
        for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
            if raw.startswith(prefix):
                return "postgresql+psycopg://" + raw[len(prefix) :]
        raise AssertionError("validated above")


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        if not item["loc"]:  # a relation between settings: its message names them
            lines.append(str(item["msg"]).removeprefix("Value error, "))
            continue
        name = str(item["loc"][0])
        field = Settings.model_fields.get(name)
        alias = field.validation_alias if field is not None and isinstance(field.validation_alias, str) else name
        reason = "is not set" if item["type"] == "missing" else f"is malformed: {item['msg']}"
        lines.append(f"{alias.upper()} {reason}")
    return "; ".join(lines)


def load_settings() -> Settings:
    """Read the settings now; raise SettingsError naming each bad variable."""
    try:
        return Settings()  # type: ignore[call-arg]  # values come from the environment
    except ValidationError as error:
        raise SettingsError(f"configuration error: {_describe(error)}") from None


@functools.cache
def settings() -> Settings:
    """The process-wide settings, read once (Lambda cold start, CLI start)."""
    return load_settings()
