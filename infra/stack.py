"""The paysaga stack: wires the constructs together and grants each function exactly what it uses."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_logs as logs
from constructs import Construct

from core import limits
from infra.alarms import Alarms
from infra.api import PaymentsApi
from infra.cache import Cache
from infra.code_asset import dependencies_layer, runtime_code
from infra.config import Config
from infra.database import Database
from infra.environment import runtime_environment
from infra.functions import (
    EXECUTION_LEASE_MS,
    IN_PROGRESS_TTL_MS,
    LEASE_WAIT_MS,
    FunctionBase,
    StartFunction,
    StepLambdas,
)
from infra.gateways import GatewayIntegration
from infra.messaging import Messaging
from infra.names import ResourceNames
from infra.network import Network
from infra.tables import Tables
from infra.workflow import PaymentSaga
from steps import registry

# The one step that publishes the outbox row to the notifications queue (ParkNotification only records the attempt).
QUEUE_PRODUCERS = ("NotifyMerchant",)
GATEWAY_TIMEOUT_MS = limits.GATEWAY_TIMEOUT_MS


class PaysagaStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: Config, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        names = ResourceNames(config.prefix)
        retention = _retention(config.log_retention_days)

        network = Network(self, "Network")
        database = Database(self, "Database", network=network, min_acu=config.aurora_min_acu,
                            max_acu=config.aurora_max_acu)
        cache = Cache(self, "Cache", network=network)
        tables = Tables(self, "Tables", names=names)
        messaging = Messaging(self, "Messaging", names=names)

        environment = runtime_environment(
            database_url=database.url_without_password,
            database_secret_arn=database.secret.secret_arn,
            redis_url=cache.url,
            idempotency_table=tables.idempotency.table_name,
            worker_slots_table=tables.worker_slots.table_name,
            notifications_queue=messaging.queue.queue_name,
            notifications_dlq=messaging.dlq.queue_name,
            notifications_topic=messaging.topic.topic_name,
            event_bus=messaging.bus.event_bus_name,
            gateway=config.gateway,
            sandbox_gateway_url=config.sandbox_gateway_url,
            adyen_merchant_account=config.adyen_merchant_account,
            adyen_checkout_url=config.adyen_checkout_url,
            gateway_timeout_ms=GATEWAY_TIMEOUT_MS,
            idempotency_in_progress_ttl_ms=IN_PROGRESS_TTL_MS,
            execution_lease_ms=EXECUTION_LEASE_MS,
            lease_wait_ms=LEASE_WAIT_MS,
        )
        layer = dependencies_layer(self, config.dependencies_layer_zip)
        base = FunctionBase(code=runtime_code(), environment=environment, network=network,
                            layers=[layer] if layer is not None else [], log_retention=retention)

        steps = StepLambdas(self, "Steps", base, prefix=config.prefix, step_concurrency=config.step_concurrency,
                              compensation_concurrency=config.compensation_concurrency)
        start = StartFunction(self, "Start", base, name=names.start_function,
                              reserved_concurrency=config.start_concurrency).function
        saga = PaymentSaga(self, "Saga", name=names.state_machine, functions=steps.by_step, log_retention=retention)
        gateways = GatewayIntegration(self, "Gateways", base, webhook_function_name=names.webhook_function,
                                      sync_function_name=names.sync_function, secret_name=names.gateway_secret)
        # The sync replays payments: it runs executions as the start function does.
        for function in (start, gateways.sync):
            function.add_environment("STATE_MACHINE_ARN", saga.state_machine.state_machine_arn)
            saga.state_machine.grant_start_sync_execution(function)
        gateway_users = [*steps.by_step.values(), gateways.webhook, gateways.sync]
        for function in gateway_users:
            function.add_environment("GATEWAY_SECRETS_ARN", gateways.secret.secret_arn)
        gateways.grant_read(*gateway_users)

        for function in [start, *steps.by_step.values(), gateways.webhook, gateways.sync]:
            database.secret.grant_read(function)
        tables.idempotency.grant_read_write_data(start)
        tables.worker_slots.grant_read_write_data(start)
        for step in QUEUE_PRODUCERS:
            messaging.queue.grant_send_messages(steps.by_step[step])

        api = PaymentsApi(self, "Api", name=config.prefix, handler=start, webhook_handler=gateways.webhook,
                          waf_requests_per_5min=config.waf_requests_per_5min, log_retention=retention)
        Alarms(
            self, "Alarms",
            topic_name=names.alarm_topic, alarm_email=config.alarm_email,
            dlq=messaging.dlq, state_machine=saga.state_machine, api=api.api, start_function=start,
            forward_steps={s: f for s, f in steps.by_step.items() if s in registry.with_role(registry.Role.FORWARD)},
            compensations={s: f for s, f in steps.by_step.items()
                           if s in registry.with_role(registry.Role.COMPENSATION, registry.Role.RECOVERY)},
            webhook_function=gateways.webhook, sync_function=gateways.sync,
        )

        CfnOutput(self, "ApiUrl", value=api.api.url)
        CfnOutput(self, "StateMachineArn", value=saga.state_machine.state_machine_arn)
        CfnOutput(self, "DatabaseProxyEndpoint", value=database.proxy.endpoint)
        CfnOutput(self, "DatabaseSecretArn", value=database.secret.secret_arn)


_RETENTIONS = (
    (7, logs.RetentionDays.ONE_WEEK),
    (14, logs.RetentionDays.TWO_WEEKS),
    (30, logs.RetentionDays.ONE_MONTH),
    (90, logs.RetentionDays.THREE_MONTHS),
    (180, logs.RetentionDays.SIX_MONTHS),
    (365, logs.RetentionDays.ONE_YEAR),
)


def _retention(days: int) -> logs.RetentionDays:
    """The smallest of a few CloudWatch retentions that keeps logs at least `days` (at most a year)."""
    for limit, retention in _RETENTIONS:
        if limit >= days:
            return retention
    return _RETENTIONS[-1][1]
