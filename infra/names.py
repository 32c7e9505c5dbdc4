"""Physical resource names, every one derived from the prefix, so two stacks with different prefixes share an account
and region without a collision (tests/unit/infra/test_names.py synthesizes two and compares every name). With the
default prefix they equal core.settings' defaults, so code that looks a queue or topic up by name finds the deployed
one; the functions also receive every name explicitly in their environment."""

from __future__ import annotations

from dataclasses import dataclass

from steps.registry import Workflow


@dataclass(frozen=True)
class ResourceNames:
    prefix: str

    @property
    def idempotency_table(self) -> str:
        return f"{self.prefix}-idempotency"

    @property
    def worker_slots_table(self) -> str:
        return f"{self.prefix}-worker-slots"

    @property
    def notifications_queue(self) -> str:
        return f"{self.prefix}-notifications.fifo"

    @property
    def notifications_dlq(self) -> str:
        return f"{self.prefix}-notifications-dlq.fifo"

    @property
    def notifications_topic(self) -> str:
        return f"{self.prefix}-payment-events"

    @property
    def event_bus(self) -> str:
        return f"{self.prefix}-payments"

    @property
    def state_machine(self) -> str:
        """The payment saga's (statemachine.asl.json)."""
        return self.workflow_state_machine(Workflow.PAYMENT)

    def workflow_state_machine(self, workflow: Workflow) -> str:
        """Each workflow's Express state machine: 'paysaga-payment-saga', 'paysaga-capture-operation', ..."""
        if workflow is Workflow.PAYMENT:
            return f"{self.prefix}-payment-saga"
        return f"{self.prefix}-{workflow.value}-operation"

    @property
    def start_function(self) -> str:
        return f"{self.prefix}-StartPayment"

    @property
    def webhook_function(self) -> str:
        return f"{self.prefix}-GatewayWebhooks"

    @property
    def sync_function(self) -> str:
        return f"{self.prefix}-PaymentSync"

    @property
    def console_function(self) -> str:
        """The operations console (saga.console.handler), behind the API's /console routes."""
        return f"{self.prefix}-OperationsConsole"

    @property
    def console_authorizer_function(self) -> str:
        """The console's API Gateway REQUEST authorizer (saga.console.authorizer): the session cookie."""
        return f"{self.prefix}-ConsoleAuthorizer"

    @property
    def notifications_consumer_function(self) -> str:
        return f"{self.prefix}-NotificationsConsumer"

    @property
    def outbox_relay_function(self) -> str:
        return f"{self.prefix}-OutboxRelay"

    @property
    def webhook_delivery_function(self) -> str:
        return f"{self.prefix}-MerchantWebhooks"

    def event_rule(self, rule: str) -> str:
        """One of the event bus's rules (core.event_rules.RULES, by name: 'send-confirmation', ...)."""
        return f"{self.prefix}-{rule}"

    def event_rule_queue(self, rule: str) -> str:
        """The queue a rule of the event bus delivers to, for whatever consumes its events."""
        return f"{self.prefix}-{rule}"

    def event_rule_dlq(self, rule: str) -> str:
        return f"{self.prefix}-{rule}-dlq"

    @property
    def gateway_secret(self) -> str:
        return f"{self.prefix}/gateways"

    @property
    def alarm_topic(self) -> str:
        return f"{self.prefix}-alarms"

    # ---- reconciliation (infra/reconciliation.py) ----------------------------------------------------------------

    @property
    def reconciliation_function(self) -> str:
        return f"{self.prefix}-Reconciliation"

    @property
    def recon_alerts_topic(self) -> str:
        """Where a run that opened new discrepancies says so (core.settings' recon_alerts_topic)."""
        return f"{self.prefix}-recon-alerts"

    @property
    def reconciliation_dlq(self) -> str:
        """What the schedules could not deliver and what the function failed on after Lambda's retries."""
        return f"{self.prefix}-reconciliation-dlq"

    def schedule(self, name: str) -> str:
        """An EventBridge Scheduler schedule ('reconciliation-hourly', 'ledger-landing', ...)."""
        return f"{self.prefix}-{name}"

    @property
    def ledger_landing_stream(self) -> str:
        """The Firehose stream the ledger's entries land through (core.settings' ledger_landing_stream)."""
        return f"{self.prefix}-ledger-landing"

    @property
    def ledger_landing_log_group(self) -> str:
        return f"/aws/kinesisfirehose/{self.ledger_landing_stream}"

    @property
    def glue_database(self) -> str:
        """The Glue (Athena) database of the landed ledger: Athena wants lowercase letters, digits and underscores."""
        return f"{self.prefix.replace('-', '_')}_ledger"

    @property
    def athena_workgroup(self) -> str:
        return f"{self.prefix}-reconciliation"

    # Bucket names are global: the account and the region (tokens, at most 12 + 14 characters) make them ours. With
    # the longest prefix (20) the longest of them is 60 characters, within S3's 63.

    def settlement_bucket(self, account: str, region: str) -> str:
        return f"{self.prefix}-settlements-{account}-{region}"

    def landing_bucket(self, account: str, region: str) -> str:
        return f"{self.prefix}-landing-{account}-{region}"

    def access_log_bucket(self, account: str, region: str) -> str:
        return f"{self.prefix}-access-logs-{account}-{region}"

    # ---- the stack --------------------------------------------------------------------------------------------

    @property
    def stack(self) -> str:
        """The CloudFormation stack's name: 'paysaga' -> 'Paysaga', 'paysaga-staging' -> 'PaysagaStaging'."""
        return "".join(part.capitalize() for part in self.prefix.split("-"))

    # ---- functions (besides the registry's steps: steps.registry.function_name) ----------------------------------

    @property
    def migrations_function(self) -> str:
        return f"{self.prefix}-DatabaseMigrations"

    @property
    def migrations_provider_function(self) -> str:
        return f"{self.prefix}-DatabaseMigrationsProvider"

    @property
    def merchant_admin_function(self) -> str:
        return f"{self.prefix}-MerchantAdmin"

    def rotation_function(self, user: str) -> str:
        """The hosted rotation function of one database secret ('master', 'owner', 'functions')."""
        return f"{self.prefix}-RotateDatabase{user.capitalize()}"

    # ---- the database and the cache ----------------------------------------------------------------------------

    @property
    def database_cluster(self) -> str:
        return f"{self.prefix}-ledger"

    @property
    def database_proxy(self) -> str:
        return f"{self.prefix}-ledger-proxy"

    def database_secret(self, user: str) -> str:
        """The secret of one database login ('master', 'owner', 'functions')."""
        return f"{self.prefix}/database/{user}"

    @property
    def redis(self) -> str:
        return f"{self.prefix}-fences"

    # ---- encryption keys and log groups ------------------------------------------------------------------------

    @property
    def logs_key_alias(self) -> str:
        return f"alias/{self.prefix}/logs"

    @property
    def messages_key_alias(self) -> str:
        return f"alias/{self.prefix}/messages"

    @property
    def data_key_alias(self) -> str:
        return f"alias/{self.prefix}/data"

    def function_log_group(self, function_name: str) -> str:
        return f"/aws/lambda/{function_name}"

    @property
    def state_machine_log_group(self) -> str:
        return self.workflow_log_group(Workflow.PAYMENT)

    def workflow_log_group(self, workflow: Workflow) -> str:
        # The /aws/vendedlogs/ prefix keeps CloudWatch's log resource policy from growing per log group.
        return f"/aws/vendedlogs/states/{self.workflow_state_machine(workflow)}"

    @property
    def api_access_log_group(self) -> str:
        return f"/{self.prefix}/api/access"

    @property
    def flow_log_group(self) -> str:
        return f"/{self.prefix}/vpc/flow-logs"

    @property
    def database_log_group(self) -> str:
        """Where Aurora exports the PostgreSQL log: a name RDS chooses, made beforehand to encrypt and retain it."""
        return f"/aws/rds/cluster/{self.database_cluster}/postgresql"
