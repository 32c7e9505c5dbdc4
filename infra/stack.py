"""The paysaga stack: wires the constructs together and grants each function exactly the calls its code makes."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct

from core import limits
from infra.admin import Administration
from infra.alarms import Alarms
from infra.api import PaymentsApi
from infra.cache import Cache
from infra.code_asset import dependencies_layer, runtime_code
from infra.config import Config
from infra.console import ConsoleFunctions
from infra.dashboard import OperationsDashboard
from infra.database import Database
from infra.environment import STATE_MACHINE_ARN_VARIABLES, runtime_environment
from infra.functions import (
    EXECUTION_LEASE_MS,
    IN_PROGRESS_TTL_MS,
    LEASE_WAIT_MS,
    START_ANSWER_BUDGET_MS,
    FunctionBase,
    StartFunction,
    StepLambdas,
    vpc_access_policy,
)
from infra.gateways import GatewayIntegration
from infra.keys import Keys
from infra.log_groups import LogPolicy, retention_for
from infra.messaging import Messaging
from infra.metrics import ReconciliationWatched, Watched
from infra.nag import suppress_api_findings, suppress_synchronous_function_findings
from infra.names import ResourceNames
from infra.network import Network
from infra.notifications import Notifications
from infra.permissions import (
    DYNAMODB_ITEM_ACTIONS,
    LANDING_PUT_ACTIONS,
    LOG_READ_ACTIONS,
    OBJECT_KEY_ACTIONS,
    OBJECT_READ_ACTIONS,
    PUT_EVENTS_ACTIONS,
    QUEUE_CONSUME_ACTIONS,
    QUEUE_SEND_ACTIONS,
    SECRET_READ_ACTIONS,
    START_EXECUTION_ACTIONS,
    TOPIC_KEY_ACTIONS,
    TOPIC_PUBLISH_ACTIONS,
    WORKER_SLOT_ACTIONS,
    allow,
)
from infra.reconciliation import DISCREPANCY_KINDS, SETTLEMENT_PREFIX, Reconciliation, object_arn
from infra.tables import Tables
from infra.workflow import express_workflows
from steps import registry
from steps.registry import Workflow

# The one step that publishes the outbox row to the notifications queue (ParkNotification only records the attempt;
# the outbox relay publishes what no step did).
QUEUE_PRODUCERS = ("NotifyMerchant",)
GATEWAY_TIMEOUT_MS = limits.GATEWAY_TIMEOUT_MS


class PaysagaStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: Config, **kwargs: Any) -> None:
        names = ResourceNames(config.prefix)
        super().__init__(scope, construct_id, stack_name=names.stack, **kwargs)
        keys = Keys(self, "Keys", names=names)
        log_policy = LogPolicy(key=keys.logs, retention=retention_for(config.log_retention_days))

        network = Network(self, "Network", names=names, log_policy=log_policy)
        database = Database(self, "Database", network=network, names=names, log_policy=log_policy,
                            min_acu=config.aurora_min_acu, max_acu=config.aurora_max_acu,
                            backup_retention_days=config.backup_retention_days,
                            rotation_days=config.secret_rotation_days)
        cache = Cache(self, "Cache", network=network, names=names)
        tables = Tables(self, "Tables", names=names)
        messaging = Messaging(self, "Messaging", names=names, topic_key=keys.messages)

        environment = runtime_environment(
            database_url=database.url_without_password,
            database_secret_arn=database.functions_secret.secret_arn,
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
            start_answer_budget_ms=START_ANSWER_BUDGET_MS,
        )
        base = FunctionBase(code=runtime_code(), environment=environment, network=network,
                            layers=[dependencies_layer(self, config.dependencies_layer_zip)], log_policy=log_policy,
                            vpc_access=vpc_access_policy(self, "FunctionsVpcAccess"), names=names)

        steps = StepLambdas(self, "Steps", base, prefix=config.prefix, step_concurrency=config.step_concurrency,
                            compensation_concurrency=config.compensation_concurrency)
        start = StartFunction(self, "Start", base, name=names.start_function,
                              reserved_concurrency=config.start_concurrency).function
        # The payment saga and the operations after checkout (capture, cancel, refund): one Express machine each.
        workflows = express_workflows(self, names=names, functions=steps.by_step, log_policy=log_policy,
                                      log_level=config.workflow_log_level,
                                      log_execution_data=config.workflow_log_execution_data)
        saga = workflows[Workflow.PAYMENT]
        operations = {workflow: workflows[workflow].state_machine for workflow in registry.OPERATIONS}
        machines = [workflow.state_machine for workflow in workflows.values()]
        gateways = GatewayIntegration(self, "Gateways", base, webhook_function_name=names.webhook_function,
                                      sync_function_name=names.sync_function, secret_name=names.gateway_secret,
                                      webhook_concurrency=config.webhook_concurrency)
        admin = Administration(self, "Admin", base, database=database)
        notifications = Notifications(self, "Notifications", base, messaging=messaging, messages_key=keys.messages)
        recon = Reconciliation(self, "Reconciliation", base, data_key=keys.data, messages_key=keys.messages,
                               access_log_retention_days=config.log_retention_days)
        console = ConsoleFunctions(self, "Console", base, console_name=names.console_function,
                                   authorizer_name=names.console_authorizer_function)
        runtime_functions = [start, *steps.by_step.values(), gateways.webhook, gateways.sync, *notifications.functions,
                             recon.function, *console.functions]

        # ---- Who may call what: exactly what each function's code calls (infra/permissions.py) ----
        # The webhook function runs the start function's handler (saga.handler), whose services name the saga's state
        # machine; only the start, sync and console functions run executions: the saga's, and the operations' (the
        # start function's capture, cancel and refund routes; the sync's pending operations and expiring
        # authorizations; the console's audited replays of an execution of any workflow: saga.replay).
        for function in (start, gateways.webhook, gateways.sync, console.function):
            function.add_environment(STATE_MACHINE_ARN_VARIABLES[Workflow.PAYMENT],
                                     saga.state_machine.state_machine_arn)
        for function in (start, gateways.sync, console.function):
            for workflow, machine in operations.items():
                function.add_environment(STATE_MACHINE_ARN_VARIABLES[workflow], machine.state_machine_arn)
        allow([start, gateways.sync, console.function], START_EXECUTION_ACTIONS,
              [machine.state_machine_arn for machine in machines])
        # The console's timelines: an Express execution's events are only in its machine's log group (read there,
        # never in any other log group). Its other reads (executions, parked payments, the ledger, the reconciliation's
        # discrepancies, the audit) are the database's; the authorizer reads the database only (the secret below).
        allow([console.function], LOG_READ_ACTIONS,
              [workflow.log_group.log_group_arn for workflow in workflows.values()])
        allow([start], DYNAMODB_ITEM_ACTIONS, [tables.idempotency.table_arn])
        allow([start], WORKER_SLOT_ACTIONS, [tables.worker_slots.table_arn])
        allow(runtime_functions, SECRET_READ_ACTIONS, [database.functions_secret.secret_arn])
        # The reconciliation's hourly run fetches Stripe's balance transactions with the gateway's key.
        gateway_users = [*steps.by_step.values(), gateways.webhook, gateways.sync, recon.function]
        for function in gateway_users:
            function.add_environment("GATEWAY_SECRETS_ARN", gateways.secret.secret_arn)
        allow(gateway_users, SECRET_READ_ACTIONS, [gateways.secret.secret_arn])
        allow([*(steps.by_step[step] for step in QUEUE_PRODUCERS), notifications.relay], QUEUE_SEND_ACTIONS,
              [messaging.queue.queue_arn])
        # The consumer: the event source reads the queue with its role; its code publishes to the topic (encrypted
        # with the messages key) and puts the events on the bus. The webhook deliveries call nothing on AWS but the
        # database secret.
        allow([notifications.consumer], QUEUE_CONSUME_ACTIONS, [messaging.queue.queue_arn])
        allow([notifications.consumer], TOPIC_PUBLISH_ACTIONS, [messaging.topic.topic_arn])
        allow([notifications.consumer], TOPIC_KEY_ACTIONS, [keys.messages.key_arn])
        allow([notifications.consumer], PUT_EVENTS_ACTIONS, [messaging.bus.event_bus_arn])
        # The reconciliation: the reports under settlements/ (decrypted through S3 with the data key), the landing
        # stream, the alerts topic (looked up by name, encrypted with the messages key). Its dead-letter queue's
        # sqs:SendMessage is Lambda's (infra/functions.py make_function).
        allow([recon.function], OBJECT_READ_ACTIONS, [object_arn(recon.settlement_bucket_arn, SETTLEMENT_PREFIX)])
        allow([recon.function], OBJECT_KEY_ACTIONS, [keys.data.key_arn],
              conditions={"StringEquals": {"kms:ViaService": f"s3.{self.region}.amazonaws.com"}})
        allow([recon.function], LANDING_PUT_ACTIONS, [recon.landing_stream.attr_arn])
        allow([recon.function], TOPIC_PUBLISH_ACTIONS, [recon.alerts_topic.topic_arn])
        allow([recon.function], TOPIC_KEY_ACTIONS, [keys.messages.key_arn])
        assert recon.function.role is not None
        NagSuppressions.add_resource_suppressions(recon.function.role, [NagPackSuppression(
            id="AwsSolutions-IAM5",
            applies_to=[RegexAppliesTo(regex=f"/^Resource::.*/{SETTLEMENT_PREFIX}\\*$/g")],
            reason=f"the settlement reports are whatever objects the gateways' deliveries put under "
                   f"{SETTLEMENT_PREFIX}<gateway>/ (the notification names the key): s3:GetObject on that prefix of "
                   "the settlement bucket only")], apply_to_children=True)

        api = PaymentsApi(self, "Api", name=config.prefix, handler=start, webhook_handler=gateways.webhook,
                          console_handler=console.function, console_authorizer=console.authorizer,
                          waf_requests_per_api_key_per_5min=config.waf_requests_per_api_key_per_5min,
                          waf_requests_per_ip_per_5min=config.waf_requests_per_ip_per_5min,
                          log_retention=log_policy.retention, log_encryption_key=keys.logs)

        # ---- Migrations before traffic: on every deploy, the schema first, then what serves payments ----
        for dependent in (*runtime_functions, *machines, gateways.schedule, *notifications.schedules, *recon.schedules,
                          notifications.consumer_source, api.api.deployment_stage):
            dependent.node.add_dependency(admin.schema)

        watched = Watched(
            api=api, state_machine=saga.state_machine, operation_machines=operations, start_function=start,
            steps=steps.by_step,
            webhook_function=gateways.webhook, sync_function=gateways.sync,
            database_proxy=database.proxy, database_cluster=database.cluster, cache=cache.group,
            tables=[tables.idempotency, tables.worker_slots], queue=messaging.queue, dlq=messaging.dlq,
            notifications_consumer=notifications.consumer, outbox_relay=notifications.relay,
            webhook_delivery=notifications.webhook_delivery, event_rule_dlqs=notifications.rule_dlqs,
            reconciliation=ReconciliationWatched(function=recon.function, dlq=recon.dlq,
                                                 landing_stream_name=recon.landing_stream_name,
                                                 discrepancy_kinds=DISCREPANCY_KINDS),
            console_functions={"Console": console.function, "ConsoleAuthorizer": console.authorizer},
        )
        alarms = Alarms(self, "Alarms", watched=watched, topic_name=names.alarm_topic, alarm_email=config.alarm_email,
                        master_key=keys.messages)
        OperationsDashboard(self, "Dashboard", watched=watched, prefix=config.prefix, alarms=alarms.alarms)

        suppress_api_findings(api)
        suppress_synchronous_function_findings([start, *steps.by_step.values(), gateways.webhook,
                                                *console.functions])

        CfnOutput(self, "ApiUrl", value=api.api.url)
        CfnOutput(self, "ConsoleUrl", value=f"{api.api.url}console/login",
                  description="the operations console's login page")
        CfnOutput(self, "StateMachineArn", value=saga.state_machine.state_machine_arn)
        for workflow, machine in operations.items():
            CfnOutput(self, f"{workflow.value.capitalize()}StateMachineArn", value=machine.state_machine_arn)
        CfnOutput(self, "DatabaseProxyEndpoint", value=database.proxy.endpoint)
        CfnOutput(self, "DatabaseSecretArn", value=database.functions_secret.secret_arn)
        CfnOutput(self, "SettlementBucket", value=recon.settlement_bucket_name,
                  description="put settlement reports under settlements/adyen/ or settlements/sandbox/")
        CfnOutput(self, "AthenaWorkgroup", value=recon.workgroup.name)
        CfnOutput(self, "MerchantAdminFunction", value=admin.merchants.function_name,
                  description="aws lambda invoke --function-name <this> --payload '{\"action\": \"list\"}' out.json")
