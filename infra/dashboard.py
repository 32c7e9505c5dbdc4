"""The operations dashboard: what payments did, how fast the saga ran, the operations after checkout (capture, cancel,
refund: their machines and steps), the health of what it all runs on, and the reconciliation (runs, settlement lines
imported, discrepancies opened, its failures).

Its metrics are infra/metrics.py's, the ones the alarms read: the runtime's own (core.telemetry_names; one line per
registry step, per final status, per business error name) and the AWS services'.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from aws_cdk import Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from core import limits
from core import telemetry_names as names
from core.gateways import GATEWAY_NAMES
from infra import metrics
from infra.alarms import LANDING_FAILED_CONVERSION, START_LATENCY_P99_MS, api_error_rate
from infra.metrics import PERIOD, Watched

HEIGHT: Final[int] = 6
PERCENTILES: Final[tuple[str, ...]] = ("p50", "p99")


def dashboard_name(prefix: str) -> str:
    return f"{prefix}-operations"


def _graph(title: str, left: Sequence[cloudwatch.IMetric], *, right: Sequence[cloudwatch.IMetric] = (),
           width: int = 12, stacked: bool = False, left_label: str = "", right_label: str = "",
           left_annotations: Sequence[cloudwatch.HorizontalAnnotation] = ()) -> cloudwatch.GraphWidget:
    return cloudwatch.GraphWidget(
        title=title, left=list(left), right=list(right), width=width, height=HEIGHT, stacked=stacked,
        left_y_axis=cloudwatch.YAxisProps(label=left_label, show_units=False, min=0),
        right_y_axis=cloudwatch.YAxisProps(label=right_label, show_units=False, min=0),
        left_annotations=list(left_annotations), period=PERIOD)


class OperationsDashboard(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, watched: Watched, prefix: str,
                 alarms: Sequence[cloudwatch.IAlarm] = ()) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=dashboard_name(prefix))
        if alarms:
            self.dashboard.add_widgets(cloudwatch.AlarmStatusWidget(
                title="Alarms", alarms=list(alarms), width=24, height=HEIGHT))
        self.dashboard.add_widgets(*self._payments(watched))
        self.dashboard.add_widgets(*self._latency(watched))
        self.dashboard.add_widgets(*self._operations(watched))
        self.dashboard.add_widgets(*self._api(watched))
        self.dashboard.add_widgets(*self._functions(watched))
        self.dashboard.add_widgets(*self._database(watched))
        self.dashboard.add_widgets(*self._backends(watched))
        self.dashboard.add_widgets(*self._notifications(watched))
        self.dashboard.add_widgets(*self._reconciliation(watched))

    @staticmethod
    def _payments(watched: Watched) -> list[cloudwatch.IWidget]:
        machine = watched.state_machine
        return [
            _graph("Payments finished, by outcome", [metrics.payments_finished(o) for o in metrics.OUTCOMES],
                   width=8, stacked=True, left_label="payments"),
            _graph("Declines, by business error", [metrics.payments_declined(e) for e in metrics.BUSINESS_ERROR_NAMES],
                   width=8, stacked=True, left_label="payments"),
            _graph("Parked, and executions timed out",
                   [metrics.payments_parked(),
                    machine.metric_timed_out(period=PERIOD, statistic="Sum", label="executions timed out")],
                   right=[machine.metric_started(period=PERIOD, statistic="Sum", label="executions started")],
                   width=8, left_label="count", right_label="executions"),
        ]

    @staticmethod
    def _latency(watched: Watched) -> list[cloudwatch.IWidget]:
        start_route = [metrics.api_metric(watched.api, "Latency", stat, start_route=True,
                                          label=f"POST /v1/payments {stat} (API Gateway)") for stat in PERCENTILES]
        # The start function's own measure: its dimension `outcome` (the HTTP status class) is the runtime's to name,
        # so every value it emits is searched for rather than listed here.
        start_own = [cloudwatch.MathExpression(
            expression=f"SEARCH('{{{names.NAMESPACE},{names.DIMENSION_OUTCOME}}} "
                       f"MetricName=\"{names.START_LATENCY_MS}\"', '{stat}', {int(PERIOD.to_seconds())})",
            using_metrics={}, label=f"start {stat}", period=PERIOD) for stat in PERCENTILES]
        return [
            _graph("Start latency (ms)", [*start_route, *start_own], left_label="ms", left_annotations=[
                cloudwatch.HorizontalAnnotation(value=START_LATENCY_P99_MS, label="p99 alarm"),
                cloudwatch.HorizontalAnnotation(value=limits.API_INTEGRATION_TIMEOUT_MS,
                                                label="API Gateway cuts the client off"),
            ]),
            _graph("Step faults (not declines), by step",
                   [metrics.step_metric(names.STEP_FAULTS, step, "Sum") for step in metrics.STEPS],
                   stacked=True, left_label="faults"),
            *[_graph(f"Step latency {stat} (ms), by step",
                     [metrics.step_metric(names.STEP_LATENCY_MS, step, stat) for step in metrics.STEPS],
                     left_label="ms") for stat in PERCENTILES],
        ]

    @staticmethod
    def _operations(watched: Watched) -> list[cloudwatch.IWidget]:
        """The operations after checkout, as the saga's row shows the saga: executions, step faults and latency."""
        machines = watched.operation_machines
        return [
            _graph("Operations: executions timed out (started: right), by workflow",
                   [machine.metric_timed_out(period=PERIOD, statistic="Sum", label=f"{workflow.value} timed out")
                    for workflow, machine in machines.items()],
                   right=[machine.metric_started(period=PERIOD, statistic="Sum", label=f"{workflow.value} started")
                          for workflow, machine in machines.items()],
                   width=6, left_label="executions", right_label="executions"),
            _graph("Operation step faults (not declines), by step",
                   [metrics.step_metric(names.STEP_FAULTS, step, "Sum") for step in metrics.OPERATION_STEPS],
                   width=6, stacked=True, left_label="faults"),
            *[_graph(f"Operation step latency {stat} (ms), by step",
                     [metrics.step_metric(names.STEP_LATENCY_MS, step, stat) for step in metrics.OPERATION_STEPS],
                     width=6, left_label="ms") for stat in PERCENTILES],
        ]

    @staticmethod
    def _api(watched: Watched) -> list[cloudwatch.IWidget]:
        api = watched.api
        rules = [rule.name for rule in api.waf_rules]
        region = Stack.of(api).region

        def waf(metric_name: str, rule: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/WAFV2", metric_name=metric_name, statistic="Sum", period=PERIOD, label=rule,
                dimensions_map={"WebACL": api.web_acl_metric_name, "Region": region, "Rule": rule})

        return [
            _graph("API requests and errors",
                   [metrics.api_metric(api, "Count", "Sum", label="requests"),
                    metrics.api_metric(api, "4XXError", "Sum", label="4xx"),
                    metrics.api_metric(api, "5XXError", "Sum", label="5xx")],
                   right=[api_error_rate(watched, "4XX"), api_error_rate(watched, "5XX")],
                   left_label="requests", right_label="%"),
            _graph("WAF: blocked by rule (ALL: the web ACL), allowed",
                   [waf("BlockedRequests", rule) for rule in (*rules, "ALL")],
                   right=[waf("AllowedRequests", "ALL")], left_label="blocked", right_label="allowed"),
        ]

    @staticmethod
    def _functions(watched: Watched) -> list[cloudwatch.IWidget]:
        functions = watched.functions
        return [
            _graph("Lambda errors (forward steps: declines included)",
                   [f.metric_errors(period=PERIOD, statistic="Sum", label=label) for label, f in functions.items()],
                   left_label="errors"),
            _graph("Lambda throttles",
                   [f.metric_throttles(period=PERIOD, statistic="Sum", label=label) for label, f in functions.items()],
                   left_label="throttles"),
        ]

    @staticmethod
    def _database(watched: Watched) -> list[cloudwatch.IWidget]:
        proxy, cluster = watched.database_proxy, watched.database_cluster
        return [
            _graph("RDS Proxy: connections, pinning, borrow latency",
                   [metrics.proxy_metric(proxy, name, "Maximum") for name in (
                       "ClientConnections", "DatabaseConnections", "DatabaseConnectionsCurrentlySessionPinned")],
                   right=[metrics.proxy_metric(proxy, "DatabaseConnectionsBorrowLatency", stat).with_(
                       label=f"borrow latency {stat}") for stat in ("Average", "Maximum")],
                   left_label="connections", right_label="µs"),
            _graph("Aurora: ACU utilization, CPU, capacity",
                   [metrics.cluster_metric(cluster, name, "Maximum") for name in ("ACUUtilization", "CPUUtilization")],
                   right=[metrics.cluster_metric(cluster, "ServerlessDatabaseCapacity", "Maximum")],
                   left_label="%", right_label="ACU"),
        ]

    @staticmethod
    def _backends(watched: Watched) -> list[cloudwatch.IWidget]:
        nodes = metrics.cache_nodes(watched.cache)
        return [
            _graph("Redis: engine CPU, evictions",
                   [metrics.cache_metric(node, "EngineCPUUtilization", "Maximum", f"node {i} engine CPU")
                    for i, node in enumerate(nodes, start=1)],
                   right=[metrics.cache_metric(node, "Evictions", "Sum", f"node {i} evictions")
                          for i, node in enumerate(nodes, start=1)],
                   width=8, left_label="%", right_label="keys"),
            _graph("DynamoDB throttle events",
                   [metrics.table_throttles(table, index, label=table.table_name)
                    for index, table in enumerate(watched.tables)],
                   width=8, left_label="events"),
            _graph("Notifications: oldest message, DLQ, outbox lag",
                   [watched.queue.metric_approximate_age_of_oldest_message(
                       period=PERIOD, statistic="Maximum", label="oldest message"),
                    cloudwatch.MathExpression(expression="lag / 1000", label="outbox lag p99", period=PERIOD,
                                              using_metrics={"lag": metrics.runtime(names.OUTBOX_LAG_MS, "p99")})],
                   right=[watched.dlq.metric_approximate_number_of_messages_visible(
                       period=PERIOD, statistic="Maximum", label="dead-lettered")],
                   width=8, left_label="seconds", right_label="messages"),
        ]

    @staticmethod
    def _notifications(watched: Watched) -> list[cloudwatch.IWidget]:
        return [
            _graph("Notifications: consumer, relay and delivery errors, failed webhook deliveries",
                   [*(f.metric_errors(period=PERIOD, statistic="Sum", label=f"{label} errors")
                      for label, f in watched.notification_functions.items()),
                    metrics.webhook_deliveries_failed()],
                   right=[watched.queue.metric_approximate_age_of_oldest_message(
                       period=PERIOD, statistic="Maximum", label="oldest message")],
                   left_label="count", right_label="seconds"),
            _graph("Event rules: dead-lettered, by rule",
                   [dlq.metric_approximate_number_of_messages_visible(period=PERIOD, statistic="Maximum", label=rule)
                    for rule, dlq in watched.event_rule_dlqs.items()],
                   left_label="messages"),
        ]

    @staticmethod
    def _reconciliation(watched: Watched) -> list[cloudwatch.IWidget]:
        recon = watched.reconciliation
        return [
            _graph("Reconciliation: discrepancies opened, by kind (runs: right)",
                   [metrics.discrepancies_opened(kind) for kind in recon.discrepancy_kinds],
                   right=[metrics.recon_runs()], width=8, stacked=True, left_label="discrepancies",
                   right_label="runs"),
            _graph("Settlement lines imported, by gateway",
                   [metrics.settlement_lines_imported(gateway) for gateway in GATEWAY_NAMES],
                   width=8, stacked=True, left_label="lines"),
            _graph("Reconciliation: errors, throttles, dead-lettered; landing conversions failed",
                   [recon.function.metric_errors(period=PERIOD, statistic="Sum", label="errors"),
                    recon.function.metric_throttles(period=PERIOD, statistic="Sum", label="throttles (queued)"),
                    metrics.landing_metric(recon.landing_stream_name, LANDING_FAILED_CONVERSION, "Sum",
                                           label="records not converted")],
                   right=[recon.dlq.metric_approximate_number_of_messages_visible(
                       period=PERIOD, statistic="Maximum", label="dead-lettered")],
                   width=8, left_label="count", right_label="messages"),
        ]
