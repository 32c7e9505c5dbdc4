"""Alarms, all sent to one SNS topic: notifications dead-lettered, executions failed, function errors, API 5xx,
payments the sync left parked."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

PERIOD = Duration.minutes(5)
METRIC_NAMESPACE = "paysaga"
# The lines the runtime logs where an engineer must act (tests/unit/infra checks each against its source): the sync
# stopped replaying a payment (saga/sync.py); a gateway refused a refund the saga counted as given back
# (saga/webhooks.py).
SYNC_GAVE_UP_MESSAGE = "payment left parked after the sync's last attempt; an engineer must look"
REFUND_REFUSED_MESSAGE = "the gateway refused a refund"
# Forward steps raise on business outcomes too (a decline is a Lambda error Step Functions catches), so they alarm on
# an error rate; a start function or compensation error is never expected, so those alarm on the first one.
STEP_ERROR_RATE_PERCENT = 20


class Alarms(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, topic_name: str, alarm_email: str,
                 dlq: sqs.IQueue, state_machine: sfn.StateMachine, api: apigw.RestApi,
                 start_function: lambda_.IFunction, forward_steps: Mapping[str, lambda_.IFunction],
                 compensations: Mapping[str, lambda_.IFunction], webhook_function: lambda_.Function,
                 sync_function: lambda_.Function) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(self, "Topic", topic_name=topic_name, enforce_ssl=True)
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        self._action = actions.SnsAction(self.topic)
        self.alarms: list[cloudwatch.Alarm] = []

        self._any("DlqNotEmpty", "a notification was dead-lettered",
                  dlq.metric_approximate_number_of_messages_visible(period=Duration.minutes(1), statistic="Maximum"))
        self._any("ExecutionsFailed", "a payment saga execution failed",
                  state_machine.metric_failed(period=Duration.minutes(1), statistic="Sum"))
        self._any("ExecutionsTimedOut", "a payment saga execution hit the Express time limit",
                  state_machine.metric_timed_out(period=Duration.minutes(1), statistic="Sum"))
        self._any("Api5xx", "the payments API answered 5xx",
                  api.metric_server_error(period=PERIOD, statistic="Sum"))
        self._any("StartFunctionErrors", "the start function crashed",
                  start_function.metric_errors(period=PERIOD, statistic="Sum"))
        self._any("WebhookFunctionErrors", "the gateway webhook function crashed (the gateways redeliver)",
                  webhook_function.metric_errors(period=PERIOD, statistic="Sum"))
        self._any("SyncFunctionErrors", "a payment-status sync pass crashed",
                  sync_function.metric_errors(period=PERIOD, statistic="Sum"))
        self._logged("PaymentsLeftParked", "the sync left a payment parked after its last attempt",
                     sync_function, SYNC_GAVE_UP_MESSAGE)
        self._logged("RefundsRefused", "a gateway refused a refund after accepting it: money was not given back",
                     webhook_function, REFUND_REFUSED_MESSAGE)
        for step, function in compensations.items():
            self._any(f"{step}Errors", f"compensation/recovery {step} failed",
                      function.metric_errors(period=PERIOD, statistic="Sum"))
        for step, function in forward_steps.items():
            rate = cloudwatch.MathExpression(
                expression="100 * errors / MAX([invocations, 1])",
                using_metrics={"errors": function.metric_errors(period=PERIOD, statistic="Sum"),
                               "invocations": function.metric_invocations(period=PERIOD, statistic="Sum")},
                period=PERIOD,
                label=f"{step} error rate (%)",
            )
            self._add(rate.create_alarm(
                self, f"{step}ErrorRate",
                alarm_description=f"more than {STEP_ERROR_RATE_PERCENT}% of {step} invocations failed",
                threshold=STEP_ERROR_RATE_PERCENT,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                evaluation_periods=2,
                datapoints_to_alarm=2,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            ))

    def _logged(self, name: str, description: str, function: lambda_.Function, message: str) -> None:
        """An alarm on the first log line of the function whose message is `message` (a Powertools JSON log)."""
        metric_filter = logs.MetricFilter(
            self, f"{name}Filter", log_group=function.log_group,
            filter_pattern=logs.FilterPattern.string_value("$.message", "=", message),
            metric_namespace=METRIC_NAMESPACE, metric_name=name, metric_value="1")
        self._any(name, description, metric_filter.metric(period=PERIOD, statistic="Sum"))

    def _any(self, construct_id: str, description: str, metric: cloudwatch.Metric) -> None:
        """An alarm on the metric being above zero once."""
        self._add(metric.create_alarm(
            self, construct_id,
            alarm_description=description,
            threshold=0,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
            evaluation_periods=1,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        ))

    def _add(self, alarm: cloudwatch.Alarm) -> None:
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        self.alarms.append(alarm)
