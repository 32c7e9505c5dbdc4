"""Alarms that mean an engineer must look, all sent to one KMS-encrypted SNS topic.

A business outcome is never an alarm: every decline (and every capture or refund a gateway refuses) ends its
execution in a Fail state and a forward step's Lambda error (ExecutionsFailed and Lambda Errors count declines), so
nothing here watches either. What is watched: payments parked for an engineer, recovery and compensation failures,
faults (not declines) of the forward steps, executions that ran out of time (the saga's and the operations'),
throttles, the start path's latency and error rates, and the saturation of what the saga runs on (RDS Proxy, Aurora,
Redis, DynamoDB, the notifications queue). The operations after checkout (capture, cancel, refund) are watched the way
the saga is: their machines' timeouts, their steps' faults, errors and throttles. The reconciliation: new discrepancies
(any kind, in an hour), its function's errors and dead-lettered invocations, ledger entries Firehose could not convert.

Every threshold is a named constant with its unit and why it has its value.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from core import limits
from core import telemetry_names as names
from infra import metrics
from infra.functions import registry_step
from infra.messaging import DEAD_LETTER_AFTER_S
from infra.metrics import PERIOD, Watched
from steps import registry
from steps.errors import ServiceUnavailable

# The lines the runtime logs where an engineer must act (tests/unit/infra checks each against its source): the sync
# stopped replaying a payment (saga/sync.py); a gateway refused a refund the saga counted as given back
# (saga/webhooks.py).
SYNC_GAVE_UP_MESSAGE = "payment left parked after the sync's last attempt; an engineer must look"
REFUND_REFUSED_MESSAGE = "the gateway refused a refund"
# The metric filters' namespace: the runtime's, so every paysaga metric is in one place.
METRIC_NAMESPACE: Final[str] = names.NAMESPACE

# Firehose's count of records its format conversion refused.
LANDING_FAILED_CONVERSION: Final[str] = "FailedConversion.Records"

# ---- Thresholds --------------------------------------------------------------------------------------------------

# New discrepancies: any in an hour (the hourly run's period).
DISCREPANCIES_PERIOD: Final[Duration] = Duration.hours(1)
# Events that must never happen (a payment parked, a compensation failing, a throttle, an eviction, ...): count,
# alarm on the first one in a period.
NEVER: Final[int] = 0
# A forward step's faults (StepFaults: transient or unexpected errors, never a business outcome), in percent of its
# invocations per 5 minutes, over 2 periods in a row. Faults are retried by the state machine, so a few during a
# failover or a deploy are expected; one in twenty calls for 10 minutes is a backend going bad. Faults, not Lambda
# Errors: a forward step raises its business outcome (a decline) as a Lambda error, so an error rate moves with the
# decline rate, which is the merchants' business, not an incident.
FORWARD_FAULT_RATE_PERCENT: Final[int] = 5
FORWARD_FAULT_RATE_PERIODS: Final[int] = 2
# A rate is noise over few calls (1 fault in 3 invocations is 33 %): below this many invocations (or requests) per
# period a rate alarm reads 0. The never-alarms (parked, timed out, recovery errors) cover the low-traffic hours.
RATE_MIN_SAMPLES: Final[int] = 20
# The start path's p99 latency (API Gateway's Latency of POST /v1/payments), milliseconds: half the integration
# timeout. Past it the slowest 1 % of checkouts wait more than half of what API Gateway allows before it cuts the
# client off (504), a saga whose steps or backends are slowing down; a normal payment answers in a few seconds.
START_LATENCY_P99_MS: Final[int] = limits.API_INTEGRATION_TIMEOUT_MS // 2
START_LATENCY_PERIODS: Final[int] = 3  # 15 minutes: a p99 over few requests is close to their maximum
START_LATENCY_DATAPOINTS: Final[int] = 2
# API answers in 4xx, percent of requests per 5 minutes. A decline is 402 and declines run at 5-20 % of card payments,
# with the merchants' own 400/401/409/422; above half of all answers something is systematically wrong: a merchant
# integration or key broken, a gateway declining everything, our backends answering ServiceUnavailable, card testing.
API_4XX_RATE_PERCENT: Final[int] = 50
# API answers in 5xx, percent of requests per 5 minutes: the API answers 5xx only when our side failed (500 a bug, 503
# a backend down past its retries, 504 API Gateway's cut); 1 % is one checkout in a hundred refused by us.
API_5XX_RATE_PERCENT: Final[int] = 1
# RDS Proxy's DatabaseConnectionsBorrowLatency, microseconds, average over 5 minutes, twice in a row. A borrow from a
# warm pool takes well under a millisecond; 100 ms on average means clients queue for a database connection (the
# proxy's max_connections_percent reached, or the database slow to open them), on the way to the proxy's 10 s borrow
# timeout, which fails steps.
PROXY_BORROW_LATENCY_US: Final[int] = 100_000
PROXY_BORROW_LATENCY_PERIODS: Final[int] = 2
# Aurora Serverless v2 ACUUtilization (capacity in percent of the cluster's max ACU) and CPUUtilization, percent,
# busiest instance, over 15 minutes. Near 100 % the cluster cannot scale further and queries queue behind each other;
# 80 % sustained leaves time to raise aurora_max_acu (or find the query) before steps time out.
AURORA_ACU_UTILIZATION_PERCENT: Final[int] = 80
AURORA_CPU_PERCENT: Final[int] = 80
# Redis EngineCPUUtilization, percent of the one core Redis runs its commands on, each node, over 15 minutes. Past
# 80 % commands queue; the fence's socket timeout is 500 ms (core/limits.py), so a saturated Redis fails
# AuthorizeGateway (transient, retried) before it is down.
REDIS_ENGINE_CPU_PERCENT: Final[int] = 80
SATURATION_PERIODS: Final[int] = 3
# The notifications queue's oldest message, seconds. A message is received within seconds when the consumer runs,
# and one it cannot deliver is redriven to the DLQ after MAX_RECEIVE_COUNT receives a visibility timeout apart
# (infra/messaging.py DEAD_LETTER_AFTER_S, 750 s; the messages of its group wait behind it that long): a message 15
# minutes old is one no consumer is taking at all.
NOTIFICATION_AGE_S: Final[int] = 900
assert NOTIFICATION_AGE_S > DEAD_LETTER_AFTER_S, "a poison message leaves for the DLQ before the age alarm sees it"


class Alarms(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, watched: Watched, topic_name: str,
                 alarm_email: str, master_key: kms.IKey | None = None) -> None:
        """`master_key`: the topic's key, a key of this stack (its policy is given CloudWatch's use); without it the
        construct makes its own."""
        super().__init__(scope, construct_id)
        # Encrypted with a customer managed key: the AWS managed alias/aws/sns key's policy cannot let CloudWatch
        # (a service principal) publish to the topic.
        self.key: kms.IKey = master_key or kms.Key(
            self, "TopicKey", description=f"{topic_name}: the alarm topic's messages", enable_key_rotation=True)
        self.topic = sns.Topic(self, "Topic", topic_name=topic_name, enforce_ssl=True, master_key=self.key)
        # CloudWatch publishes the alarms: this account's alarms only (no other account's alarm may use the key or
        # the topic through the service).
        stack = Stack.of(self)
        from_our_alarms = {
            "StringEquals": {"aws:SourceAccount": stack.account},
            "ArnLike": {"aws:SourceArn": stack.format_arn(service="cloudwatch", resource="alarm", resource_name="*",
                                                          arn_format=ArnFormat.COLON_RESOURCE_NAME)},
        }
        cloudwatch_principal = iam.ServicePrincipal("cloudwatch.amazonaws.com")
        self.key.add_to_resource_policy(iam.PolicyStatement(
            principals=[cloudwatch_principal], actions=["kms:Decrypt", "kms:GenerateDataKey*"], resources=["*"],
            conditions=from_our_alarms))
        self.topic.add_to_resource_policy(iam.PolicyStatement(
            principals=[cloudwatch_principal], actions=["sns:Publish"], resources=[self.topic.topic_arn],
            conditions=from_our_alarms))
        self._action = actions.SnsAction(self.topic)
        self.alarms: list[cloudwatch.Alarm] = []
        if alarm_email:
            # A message SNS could not deliver (the mailbox refused it) is kept, and shows on the dashboard.
            undelivered = sqs.Queue(self, "UndeliveredAlarms", encryption=sqs.QueueEncryption.SQS_MANAGED,
                                    enforce_ssl=True, retention_period=Duration.days(14))
            reason = ("this queue is the alarm email subscription's dead-letter queue (cdk-nag only recognizes a "
                      "queue's redrive target as one): what lands here stays, AlarmsUndelivered shows it")
            NagSuppressions.add_resource_suppressions(undelivered, [
                NagPackSuppression(id="AwsSolutions-SQS3", reason=reason),
                NagPackSuppression(id="Serverless-SQSRedrivePolicy", reason=reason)])
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email, dead_letter_queue=undelivered))
            self._never("AlarmsUndelivered", "SNS could not deliver an alarm to the alarm email",
                        undelivered.metric_approximate_number_of_messages_visible(period=PERIOD,
                                                                                  statistic="Maximum"))

        self._payments(watched)
        self._steps(watched)
        self._functions(watched)
        self._api(watched)
        self._database(watched)
        self._cache(watched)
        self._tables(watched)
        self._notifications(watched)
        self._reconciliation(watched)

    # ---- What happened to payments ---------------------------------------------------------------------------------

    def _payments(self, watched: Watched) -> None:
        self._never("PaymentsParked", "ParkPayment parked a payment for an engineer (needs_attention): replay it",
                    metrics.payments_parked())
        self._never("PaymentsRefusedServiceUnavailable",
                    "a payment was refused because our backends stayed down through every retry (ServiceUnavailable)",
                    metrics.payments_declined(ServiceUnavailable.__name__))
        self._never("ExecutionsTimedOut", "a payment saga execution ran out of time (the machine's TimeoutSeconds): "
                                          "its payment is left to the sync",
                    watched.state_machine.metric_timed_out(period=PERIOD, statistic="Sum"))
        for workflow, machine in watched.operation_machines.items():
            self._never(f"{workflow.value.capitalize()}ExecutionsTimedOut",
                        f"a {workflow.value} operation's execution ran out of time (the machine's TimeoutSeconds): "
                        "its operation is left to the sync",
                        machine.metric_timed_out(period=PERIOD, statistic="Sum"))
        self._logged("PaymentsLeftParked", "the sync left a payment parked after its last attempt",
                     watched.sync_function, SYNC_GAVE_UP_MESSAGE)
        self._logged("RefundsRefused", "a gateway refused a refund after accepting it: money was not given back",
                     watched.webhook_function, REFUND_REFUSED_MESSAGE)

    # ---- The steps (the saga's and the operations') -----------------------------------------------------------------

    def _steps(self, watched: Watched) -> None:
        # Compensations and recovery (ParkPayment, ParkNotification, FailOperation, ParkOperation) never raise a
        # business outcome: their first error is a payment the saga could not put back, or could not even park.
        for step, function in watched.steps_with_role(registry.Role.COMPENSATION, registry.Role.RECOVERY).items():
            role = registry_step(step).role.value
            self._never(f"{step}Errors", f"{role} step {step} failed",
                        function.metric_errors(period=PERIOD, statistic="Sum"))
        for step, function in watched.steps_with_role(registry.Role.FORWARD).items():
            rate = cloudwatch.MathExpression(
                expression=f"IF(invocations >= {RATE_MIN_SAMPLES}, 100 * FILL(faults, 0) / invocations, 0)",
                using_metrics={"faults": metrics.step_metric(names.STEP_FAULTS, step, "Sum"),
                               "invocations": function.metric_invocations(period=PERIOD, statistic="Sum")},
                period=PERIOD, label=f"{step} fault rate (%)")
            self._above(f"{step}FaultRate",
                        f"more than {FORWARD_FAULT_RATE_PERCENT}% of {step} invocations faulted (declines excluded)",
                        rate, FORWARD_FAULT_RATE_PERCENT, periods=FORWARD_FAULT_RATE_PERIODS)

    # ---- Every function --------------------------------------------------------------------------------------------

    def _functions(self, watched: Watched) -> None:
        # Reserved concurrency caps every function: a throttle is a checkout refused or a saga step delayed.
        for label, function in watched.functions.items():
            self._never(f"{label}Throttles", f"the {label} function was throttled (reserved concurrency reached)",
                        function.metric_throttles(period=PERIOD, statistic="Sum"))
        # These three answer for themselves (no business outcome is a Lambda error there): any error is a crash.
        self._never("StartFunctionErrors", "the start function crashed",
                    watched.start_function.metric_errors(period=PERIOD, statistic="Sum"))
        self._never("WebhookFunctionErrors", "the gateway webhook function crashed (the gateways redeliver)",
                    watched.webhook_function.metric_errors(period=PERIOD, statistic="Sum"))
        self._never("SyncFunctionErrors", "a payment-status sync pass crashed",
                    watched.sync_function.metric_errors(period=PERIOD, statistic="Sum"))
        # The notifications' three: a consumer invocation fails as a whole only when no record of its batch reached
        # every target (a record that fails alone is reported back, not an error); a relay or delivery run, when it
        # crashed. The next receive or run retries; the first one is an engineer's to look at.
        for label, function in watched.notification_functions.items():
            self._never(f"{label}Errors", f"the {label} function failed",
                        function.metric_errors(period=PERIOD, statistic="Sum"))
        # The console's function and its authorizer answer for themselves too (a refused login or session is an
        # answer, not an error): an error is an operator's page that crashed, or every console request refused 500.
        for label, function in watched.console_functions.items():
            self._never(f"{label}Errors", f"the {label} function failed",
                        function.metric_errors(period=PERIOD, statistic="Sum"))

    # ---- The API ---------------------------------------------------------------------------------------------------

    def _api(self, watched: Watched) -> None:
        self._above("StartLatencyP99",
                    f"POST /v1/payments p99 latency above {START_LATENCY_P99_MS} ms (API Gateway cuts at "
                    f"{limits.API_INTEGRATION_TIMEOUT_MS} ms)",
                    metrics.api_metric(watched.api, "Latency", "p99", start_route=True),
                    START_LATENCY_P99_MS, periods=START_LATENCY_PERIODS, datapoints=START_LATENCY_DATAPOINTS)
        for status, threshold in (("4XX", API_4XX_RATE_PERCENT), ("5XX", API_5XX_RATE_PERCENT)):
            self._above(f"Api{status}Rate", f"more than {threshold}% of the API's answers were {status}",
                        api_error_rate(watched, status), threshold)

    # ---- What the saga runs on -------------------------------------------------------------------------------------

    def _database(self, watched: Watched) -> None:
        proxy, cluster = watched.database_proxy, watched.database_cluster
        self._never("ProxySessionPinning",
                    "RDS Proxy pinned a client session to a database connection (a SET, a prepared statement, a "
                    "temporary table...): the proxy stops multiplexing it",
                    metrics.proxy_metric(proxy, "DatabaseConnectionsCurrentlySessionPinned", "Maximum"))
        self._above("ProxyBorrowLatency", f"RDS Proxy borrow latency above {PROXY_BORROW_LATENCY_US} µs on average",
                    metrics.proxy_metric(proxy, "DatabaseConnectionsBorrowLatency", "Average"),
                    PROXY_BORROW_LATENCY_US, periods=PROXY_BORROW_LATENCY_PERIODS)
        self._above("AuroraAcuUtilization",
                    f"Aurora above {AURORA_ACU_UTILIZATION_PERCENT}% of its max ACU for 15 minutes: raise "
                    "aurora_max_acu or find the query",
                    metrics.cluster_metric(cluster, "ACUUtilization", "Maximum"),
                    AURORA_ACU_UTILIZATION_PERCENT, periods=SATURATION_PERIODS)
        self._above("AuroraCpu", f"Aurora CPU above {AURORA_CPU_PERCENT}% for 15 minutes",
                    metrics.cluster_metric(cluster, "CPUUtilization", "Maximum"),
                    AURORA_CPU_PERCENT, periods=SATURATION_PERIODS)

    def _cache(self, watched: Watched) -> None:
        for index, node in enumerate(metrics.cache_nodes(watched.cache), start=1):
            self._above(f"RedisEngineCpuNode{index}",
                        f"Redis node {index}: engine CPU above {REDIS_ENGINE_CPU_PERCENT}% for 15 minutes",
                        metrics.cache_metric(node, "EngineCPUUtilization", "Maximum", f"node {index} engine CPU"),
                        REDIS_ENGINE_CPU_PERCENT, periods=SATURATION_PERIODS)
            # The fences must outlive their holder: an evicted fence lets a second authorization run beside the first.
            self._never(f"RedisEvictionsNode{index}", f"Redis node {index} evicted keys (fences may be among them)",
                        metrics.cache_metric(node, "Evictions", "Sum", f"node {index} evictions"))

    def _tables(self, watched: Watched) -> None:
        # On-demand tables throttle only on a sudden jump past twice the previous peak or a hot key: the idempotency
        # gate and the worker slots are on every start path.
        for index, table in enumerate(watched.tables):
            self._never(f"{table.node.id}Throttles", "a DynamoDB table throttled reads or writes",
                        metrics.table_throttles(table, index))

    def _notifications(self, watched: Watched) -> None:
        self._never("DlqNotEmpty", "a notification was dead-lettered",
                    watched.dlq.metric_approximate_number_of_messages_visible(period=Duration.minutes(1),
                                                                                statistic="Maximum"))
        self._above("NotificationsOldestMessage",
                    f"the oldest notification waits more than {NOTIFICATION_AGE_S} s: no consumer is taking them",
                    watched.queue.metric_approximate_age_of_oldest_message(period=PERIOD, statistic="Maximum"),
                    NOTIFICATION_AGE_S)
        self._never("WebhookDeliveriesFailed",
                    "a merchant webhook delivery failed after its last attempt: the merchant was not told",
                    metrics.webhook_deliveries_failed())
        for rule, dlq in watched.event_rule_dlqs.items():
            construct_id = "".join(part.capitalize() for part in rule.split("-"))
            self._never(f"{construct_id}DlqNotEmpty",
                        f"an event of the {rule} rule was dead-lettered (EventBridge could not deliver it, or its "
                        "consumer kept failing)",
                        dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"))

    def _reconciliation(self, watched: Watched) -> None:
        recon = watched.reconciliation
        # New discrepancies are the finance team's to work (the alerts topic tells them), and an engineer's to know of.
        self._never("ReconDiscrepanciesOpened",
                    "a reconciliation run opened new discrepancies between the settlements and the ledger",
                    metrics.all_discrepancies_opened(recon.discrepancy_kinds, DISCREPANCIES_PERIOD))
        self._never("ReconciliationErrors", "a reconciliation invocation failed (Lambda retries it twice, then "
                                            "dead-letters it)",
                    recon.function.metric_errors(period=PERIOD, statistic="Sum"))
        self._never("ReconciliationDlqNotEmpty",
                    "a reconciliation invocation was dead-lettered (failed after its retries, or undelivered by its "
                    "schedule): a report not imported, a run or a landing not done",
                    recon.dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum"))
        self._never("LedgerLandingFailedConversion",
                    "ledger entries Firehose could not convert to Parquet (they are under the landing bucket's "
                    "error prefix): the landing and the Glue table disagree",
                    metrics.landing_metric(recon.landing_stream_name, LANDING_FAILED_CONVERSION, "Sum"))

    # ---- Helpers ---------------------------------------------------------------------------------------------------

    def _logged(self, name: str, description: str, function: lambda_.Function, message: str) -> None:
        """An alarm on the first log line of the function whose message is `message` (a Powertools JSON log)."""
        metric_filter = logs.MetricFilter(
            self, f"{name}Filter", log_group=function.log_group,
            filter_pattern=logs.FilterPattern.string_value("$.message", "=", message),
            metric_namespace=METRIC_NAMESPACE, metric_name=name, metric_value="1")
        self._never(name, description, metric_filter.metric(period=PERIOD, statistic="Sum"))

    def _never(self, construct_id: str, description: str, metric: cloudwatch.IMetric) -> None:
        """An alarm on the metric being above zero once."""
        self._above(construct_id, description, metric, NEVER)

    def _above(self, construct_id: str, description: str, metric: cloudwatch.IMetric, threshold: float, *,
               periods: int = 1, datapoints: int | None = None) -> None:
        alarm = cloudwatch.Alarm(
            self, construct_id,
            metric=metric,
            alarm_description=description,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=periods,
            datapoints_to_alarm=datapoints or periods,
            # No data is no traffic (or no fault: most of these metrics are published only when non-zero).
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms.append(alarm)


def api_error_rate(watched: Watched, status: str) -> cloudwatch.MathExpression:
    """The API's `status` ('4XX', '5XX') answers in percent of its requests (0 below RATE_MIN_SAMPLES requests)."""
    errors, requests = f"errors_{status.lower()}", f"requests_{status.lower()}"  # ids unique on one graph
    return cloudwatch.MathExpression(
        expression=f"IF({requests} >= {RATE_MIN_SAMPLES}, 100 * {errors} / {requests}, 0)",
        using_metrics={errors: metrics.api_metric(watched.api, f"{status}Error", "Sum"),
                       requests: metrics.api_metric(watched.api, "Count", "Sum")},
        period=PERIOD, label=f"{status} rate (%)")
