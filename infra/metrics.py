"""What the alarms and the dashboard watch, and the one definition of every metric they read.

The runtime's own metrics (Powertools Metrics, CloudWatch EMF) are named in core.telemetry_names. A CloudWatch metric
is its namespace, its name and its *whole* set of dimensions: a metric emitted with one more dimension is another
metric, which no alarm here would see. So each definition below carries exactly the dimensions telemetry_names gives
that metric (`step` for the step metrics, `outcome`, `error`, none for the others), and the runtime must emit no
others: no `service` dimension, which Powertools adds by itself when Metrics is given a service name or
POWERTOOLS_SERVICE_NAME is set.

The dimension values are the runtime's facts, read where they are written: the steps from steps.registry, the final
statuses from store.lifecycle, the business error names from steps.errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_elasticache as elasticache
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn

from core import telemetry_names as names
from infra.api import START_ROUTE, PaymentsApi
from steps import registry
from steps.errors import BUSINESS_ERRORS
from store.lifecycle import FINAL

PERIOD: Final[Duration] = Duration.minutes(5)
# What each dimension takes, in a stable order (the dashboard's lines, the tests' expectations): the payment saga's
# steps, and the operations' (capture, cancel, refund).
STEPS: Final[tuple[str, ...]] = tuple(registry.STEPS)
OPERATION_STEPS: Final[tuple[str, ...]] = tuple(registry.OPERATION_STEPS)
OUTCOMES: Final[tuple[str, ...]] = tuple(sorted(FINAL))
BUSINESS_ERROR_NAMES: Final[tuple[str, ...]] = tuple(sorted(BUSINESS_ERRORS))
# The start path's method on its route (PaymentsApi.start_route_path): per-method metrics (the stage's detailed
# metrics are on) name both.
START_METHOD: Final[str] = START_ROUTE[0]


@dataclass(frozen=True)
class ReconciliationWatched:
    """The reconciliation's parts (infra/reconciliation.py) the alarms and the dashboard read."""

    function: lambda_.IFunction
    dlq: sqs.IQueue  # its dead-letter queue (the function's and the schedules')
    landing_stream_name: str  # the Firehose stream the ledger lands through
    discrepancy_kinds: Sequence[str]


@dataclass(frozen=True)
class Watched:
    """Everything the alarms and the dashboard read metrics of, as the stack built it."""

    api: PaymentsApi
    state_machine: sfn.IStateMachine  # the payment saga's
    operation_machines: Mapping[registry.Workflow, sfn.IStateMachine]  # the operations' (registry.OPERATIONS)
    start_function: lambda_.IFunction
    steps: Mapping[str, lambda_.IFunction]  # every registry step's function (registry.HANDLERS: every workflow's)
    webhook_function: lambda_.Function
    sync_function: lambda_.Function
    database_proxy: rds.IDatabaseProxy
    database_cluster: rds.IDatabaseCluster
    cache: elasticache.CfnReplicationGroup
    tables: Sequence[dynamodb.ITable]
    queue: sqs.IQueue  # the notifications queue
    dlq: sqs.IQueue  # its dead-letter queue
    notifications_consumer: lambda_.IFunction  # the queue's consumer (saga.notifications.consumer)
    outbox_relay: lambda_.IFunction
    webhook_delivery: lambda_.IFunction  # the merchant webhook deliveries
    event_rule_dlqs: Mapping[str, sqs.IQueue]  # the event bus rules' dead-letter queues, by rule name
    reconciliation: ReconciliationWatched
    # The operations console's function and its authorizer, by label (infra/console.py): errors only, no payment
    # runs through them.
    console_functions: Mapping[str, lambda_.IFunction] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = sorted(set(registry.HANDLERS) - set(self.steps))
        if missing:
            raise ValueError(f"no function watched for registry steps {missing}")
        if set(self.operation_machines) != set(registry.OPERATIONS):
            raise ValueError(f"the operations' machines watched are {sorted(self.operation_machines)}, not "
                             f"{sorted(registry.OPERATIONS)}")

    @property
    def functions(self) -> dict[str, lambda_.IFunction]:
        """Every function, by a short label: the start function, each step (the saga's, then the operations'), the
        webhook and sync functions, the notifications' three."""
        return {"Start": self.start_function, **{step: self.steps[step] for step in (*STEPS, *OPERATION_STEPS)},
                "Webhooks": self.webhook_function, "Sync": self.sync_function, **self.notification_functions}

    @property
    def notification_functions(self) -> dict[str, lambda_.IFunction]:
        return {"NotificationsConsumer": self.notifications_consumer, "OutboxRelay": self.outbox_relay,
                "MerchantWebhooks": self.webhook_delivery}

    def steps_with_role(self, *roles: registry.Role) -> dict[str, lambda_.IFunction]:
        """The steps of these roles, every workflow's: the saga's in its order, then the operations'."""
        operations = tuple(step for step in OPERATION_STEPS if registry.OPERATION_STEPS[step].role in roles)
        return {step: self.steps[step] for step in (*registry.with_role(*roles), *operations)}


# ---- The runtime's metrics (core.telemetry_names) --------------------------------------------------------------


def runtime(metric_name: str, statistic: str, dimensions: Mapping[str, str] | None = None,
            label: str | None = None, period: Duration = PERIOD) -> cloudwatch.Metric:
    return cloudwatch.Metric(namespace=names.NAMESPACE, metric_name=metric_name, dimensions_map=dict(dimensions or {}),
                             statistic=statistic, period=period, label=label)


def step_metric(metric_name: str, step: str, statistic: str, label: str | None = None) -> cloudwatch.Metric:
    return runtime(metric_name, statistic, {names.DIMENSION_STEP: step}, label=label or step)


def payments_finished(outcome: str) -> cloudwatch.Metric:
    return runtime(names.PAYMENTS_FINISHED, "Sum", {names.DIMENSION_OUTCOME: outcome}, label=outcome)


def payments_declined(error: str) -> cloudwatch.Metric:
    return runtime(names.PAYMENTS_DECLINED, "Sum", {names.DIMENSION_ERROR: error}, label=error)


def payments_parked() -> cloudwatch.Metric:
    return runtime(names.PAYMENTS_PARKED, "Sum", label="parked (needs_attention)")


def webhook_deliveries_failed() -> cloudwatch.Metric:
    """Merchant webhook deliveries given up after their last attempt (saga/notifications/webhooks.py)."""
    return runtime(names.WEBHOOK_DELIVERIES_FAILED, "Sum", label="webhook deliveries failed")


def recon_runs() -> cloudwatch.Metric:
    return runtime(names.RECON_RUNS, "Sum", label="runs")


def settlement_lines_imported(gateway: str) -> cloudwatch.Metric:
    return runtime(names.SETTLEMENT_LINES_IMPORTED, "Sum", {names.DIMENSION_GATEWAY: gateway}, label=gateway)


def discrepancies_opened(kind: str, period: Duration = PERIOD) -> cloudwatch.Metric:
    return runtime(names.RECON_DISCREPANCIES_OPENED, "Sum", {names.DIMENSION_KIND: kind}, label=kind, period=period)


def all_discrepancies_opened(kinds: Sequence[str], period: Duration = PERIOD) -> cloudwatch.MathExpression:
    """New discrepancies of every kind, summed (an alarm takes no SEARCH: each kind is listed; each is published only
    when non-zero, hence FILL)."""
    using = {f"opened{index}": discrepancies_opened(kind, period) for index, kind in enumerate(kinds)}
    return cloudwatch.MathExpression(expression=" + ".join(f"FILL({metric_id}, 0)" for metric_id in using),
                                     using_metrics=using, period=period, label="discrepancies opened")


# ---- AWS services' metrics ---------------------------------------------------------------------------------------


def api_metric(api: PaymentsApi, metric_name: str, statistic: str, *, start_route: bool = False,
               label: str | None = None) -> cloudwatch.Metric:
    """An API Gateway metric of the stage (ApiName, Stage), or of the start route only (+ Resource, Method)."""
    dimensions = {"ApiName": api.api.rest_api_name, "Stage": api.api.deployment_stage.stage_name}
    if start_route:
        dimensions |= {"Resource": api.start_route_path, "Method": START_METHOD}
    return cloudwatch.Metric(namespace="AWS/ApiGateway", metric_name=metric_name, dimensions_map=dimensions,
                             statistic=statistic, period=PERIOD, label=label)


def proxy_metric(proxy: rds.IDatabaseProxy, metric_name: str, statistic: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(namespace="AWS/RDS", metric_name=metric_name,
                             dimensions_map={"ProxyName": proxy.db_proxy_name}, statistic=statistic, period=PERIOD,
                             label=metric_name)


def cluster_metric(cluster: rds.IDatabaseCluster, metric_name: str, statistic: str) -> cloudwatch.Metric:
    """An Aurora metric of the whole cluster (DBClusterIdentifier): `Maximum` is the busiest instance's value."""
    return cloudwatch.Metric(namespace="AWS/RDS", metric_name=metric_name,
                             dimensions_map={"DBClusterIdentifier": cluster.cluster_identifier}, statistic=statistic,
                             period=PERIOD, label=metric_name)


def cache_nodes(group: elasticache.CfnReplicationGroup) -> list[str]:
    """The CacheClusterId of each node of a Redis replication group (cluster mode disabled).

    ElastiCache publishes its metrics per node, with dimension CacheClusterId (there is no ReplicationGroupId
    dimension); the nodes of a replication group made with NumCacheClusters are named `<group id>-001`, `-002`, ...
    """
    count = group.num_cache_clusters
    if not isinstance(count, int) or count < 1:
        raise ValueError("the Redis replication group must set num_cache_clusters (cluster mode disabled)")
    return [f"{group.ref}-{index:03d}" for index in range(1, count + 1)]


def cache_metric(node: str, metric_name: str, statistic: str, label: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(namespace="AWS/ElastiCache", metric_name=metric_name,
                             dimensions_map={"CacheClusterId": node}, statistic=statistic, period=PERIOD, label=label)


def table_throttles(table: dynamodb.ITable, index: int, label: str = "throttle events") -> cloudwatch.MathExpression:
    """Read and write throttle events of a table (each published only when non-zero, hence FILL); `index` keeps the
    expression's metric ids apart from another table's on one graph."""
    def events(metric_name: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(namespace="AWS/DynamoDB", metric_name=metric_name,
                                 dimensions_map={"TableName": table.table_name}, statistic="Sum", period=PERIOD)

    reads, writes = f"reads{index}", f"writes{index}"
    return cloudwatch.MathExpression(
        expression=f"FILL({reads}, 0) + FILL({writes}, 0)",
        using_metrics={reads: events("ReadThrottleEvents"), writes: events("WriteThrottleEvents")},
        period=PERIOD, label=label)


def landing_metric(stream_name: str, metric_name: str, statistic: str, label: str | None = None) -> cloudwatch.Metric:
    """An Amazon Data Firehose metric of the ledger's landing stream."""
    return cloudwatch.Metric(namespace="AWS/Firehose", metric_name=metric_name,
                             dimensions_map={"DeliveryStreamName": stream_name}, statistic=statistic, period=PERIOD,
                             label=label or metric_name)
