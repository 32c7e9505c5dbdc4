"""Notifications that arrive (issue 14): the consumer of the notifications queue, the outbox relay and the merchant
webhook deliveries, and the event bus's rules (core.event_rules.RULES), each delivering to a queue of its own.

- The consumer (saga.notifications.consumer.handler) is invoked by the queue's event source with batches of up to 10
  messages (a FIFO queue's ceiling; a FIFO event source takes no batching window) and reports the records that failed
  (ReportBatchItemFailures): Lambda deletes the others, SQS hands the failed ones back up to MAX_RECEIVE_COUNT times,
  then moves them to the DLQ. A FIFO queue's consumer scales by message groups (payments): a few instances suffice,
  and the event source never invokes more than the function's reserved concurrency (no throttles).
- The outbox relay and the webhook deliveries run on EventBridge schedules (like the payment-status sync); a run that
  fails is not retried, the next run is its retry. The deliveries claim their rows (limits.WEBHOOK_CLAIM_MS), so runs
  may overlap: a run lasts up to its timeout, five schedule ticks.
- Each rule of the bus delivers to an SQS queue (KMS-encrypted with the messages key, its own DLQ, named from the
  prefix), for the platform's consumer (a confirmation sender, a retry queue, manual review) to read.
"""

from __future__ import annotations

from typing import Any, Final

import jsii
from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from core import event_rules, limits, telemetry_names
from infra.functions import FunctionBase, make_function
from infra.messaging import CONSUMER_TIMEOUT_S, MAX_RECEIVE_COUNT, Messaging
from infra.names import ResourceNames

CONSUMER_HANDLER: Final[str] = "saga.notifications.consumer.handler"
RELAY_HANDLER: Final[str] = "saga.notifications.relay.handler"
WEBHOOK_DELIVERY_HANDLER: Final[str] = "saga.notifications.webhooks.handler"

# A FIFO event source's largest batch (and no batching window: Lambda refuses one on a FIFO queue).
CONSUMER_BATCH_SIZE: Final[int] = 10
# Concurrent consumers: the event source's maximum concurrency and the function's reservation, equal, so the poller
# never invokes past the reservation (a throttle would only hand the batch back). One payment's events are one
# message group, consumed in order; five groups at a time is ~50 events in flight, far above the payment rate's need
# for SNS + PutEvents + one insert per event. The event source's minimum is 2.
CONSUMER_CONCURRENCY: Final[int] = 5
RELAY_INTERVAL: Final[Duration] = Duration.millis(limits.OUTBOX_RELAY_INTERVAL_MS)
# One relay pass publishes at most OUTBOX_RELAY_BATCH rows in batches of 10: well within a schedule tick, so passes
# never overlap and one instance is enough (SKIP LOCKED would keep two apart anyway).
RELAY_TIMEOUT: Final[Duration] = Duration.seconds(50)
RELAY_CONCURRENCY: Final[int] = 1
WEBHOOK_DELIVERY_INTERVAL: Final[Duration] = Duration.millis(limits.WEBHOOK_DELIVERY_INTERVAL_MS)
WEBHOOK_DELIVERY_TIMEOUT: Final[Duration] = Duration.seconds(limits.WEBHOOK_FUNCTION_TIMEOUT_S)
# A delivery run lasts up to its timeout while the schedule starts one every interval: room for every run that can
# overlap, so no tick is throttled.
WEBHOOK_DELIVERY_CONCURRENCY: Final[int] = -(-limits.WEBHOOK_FUNCTION_TIMEOUT_S * 1_000
                                              // limits.WEBHOOK_DELIVERY_INTERVAL_MS)
NOTIFICATIONS_MEMORY_MB: Final[int] = 512
# What a rule's queue keeps for its consumer (SQS's maximum), and what its DLQ keeps for an engineer.
RULE_QUEUE_RETENTION: Final[Duration] = Duration.days(14)
# The rule's events are announcements a consumer acts on once: a few receives, then the DLQ.
RULE_QUEUE_MAX_RECEIVES: Final[int] = MAX_RECEIVE_COUNT

# What EventBridge does with the key of an encrypted target queue (AWS's documented key policy).
EVENTS_KEY_ACTIONS: Final[tuple[str, ...]] = ("kms:GenerateDataKey", "kms:Decrypt")

_PATTERN_FIELDS: Final[dict[str, str]] = {
    "source": "source", "detail-type": "detail_type", "detail": "detail", "account": "account", "region": "region",
    "resources": "resources", "id": "id", "time": "time", "version": "version",
}


def event_pattern(pattern: dict[str, Any]) -> events.EventPattern:
    """core.event_rules' JSON pattern as CDK's EventPattern (synthesized back to the same JSON)."""
    unknown = sorted(set(pattern) - set(_PATTERN_FIELDS))
    if unknown:
        raise ValueError(f"event pattern fields CDK's EventPattern cannot carry: {unknown}")
    return events.EventPattern(**{_PATTERN_FIELDS[key]: value for key, value in pattern.items()})


def _scheduled(scope: Construct, construct_id: str, function: lambda_.Function, *, every: Duration,
               description: str, what: str) -> events.Rule:
    schedule = events.Rule(
        scope, construct_id, description=description, schedule=events.Schedule.rate(every),
        targets=[targets.LambdaFunction(function, retry_attempts=0)],  # the next run is the retry
    )
    NagSuppressions.add_resource_suppressions(schedule, [NagPackSuppression(
        id="Serverless-EventBusDLQ",
        reason=f"a missed {what} run needs no replay: the next run, a minute later, takes everything still due "
               "(the rows wait in PostgreSQL, not in the event)")])
    NagSuppressions.add_resource_suppressions(function, [NagPackSuppression(
        id="Serverless-LambdaDLQ",
        reason=f"invoked asynchronously by its schedule only: a failed {what} run is not retried (retry_attempts=0) "
               "because the next scheduled run is the retry; its Errors alarm sees the failure")])
    return schedule


@jsii.implements(events.IRuleTarget)
class _QueueTarget:
    """A rule's queue as its target, with its DLQ for what EventBridge could not deliver. Not CDK's SqsQueue target:
    that one grants EventBridge the queue's key for every rule (kms:Encrypt, ReEncrypt*, GenerateDataKey* without a
    condition) and no key use for the DLQ; Notifications._rule writes both policies for the one rule."""

    def __init__(self, queue: sqs.IQueue, dlq: sqs.IQueue) -> None:
        self.queue = queue
        self.dlq = dlq

    def bind(self, _rule: Any, _id: str | None = None) -> events.RuleTargetConfig:
        return events.RuleTargetConfig(
            arn=self.queue.queue_arn, target_resource=self.queue,
            dead_letter_config=events.CfnRule.DeadLetterConfigProperty(arn=self.dlq.queue_arn))


class Notifications(Construct):
    def __init__(self, scope: Construct, construct_id: str, base: FunctionBase, *, messaging: Messaging,
                 messages_key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        names = base.names
        self.consumer = make_function(
            self, "Consumer", base, name=names.notifications_consumer_function, handler=CONSUMER_HANDLER,
            timeout=Duration.seconds(CONSUMER_TIMEOUT_S), memory_mb=NOTIFICATIONS_MEMORY_MB,
            reserved_concurrency=CONSUMER_CONCURRENCY, service=telemetry_names.SERVICE_NOTIFICATIONS,
            description="the notifications queue's consumer: SNS, EventBridge and merchant webhook deliveries")
        # Not CDK's SqsEventSource: it grants through queue.grant_consume_messages (actions the poller never calls);
        # the stack grants QUEUE_CONSUME_ACTIONS explicitly (infra/permissions.py).
        self.consumer_source = lambda_.EventSourceMapping(
            self, "ConsumerSource", target=self.consumer, event_source_arn=messaging.queue.queue_arn,
            batch_size=CONSUMER_BATCH_SIZE, report_batch_item_failures=True, max_concurrency=CONSUMER_CONCURRENCY)
        NagSuppressions.add_resource_suppressions(self.consumer_source, [NagPackSuppression(
            id="Serverless-LambdaEventSourceMappingDestination",
            reason="an SQS event source takes no on-failure destination (Lambda offers one for stream and Kafka "
                   "sources): the queue's redrive policy is its failure destination, the notifications DLQ after "
                   "MAX_RECEIVE_COUNT receives, watched by DlqNotEmpty")], apply_to_children=True)
        NagSuppressions.add_resource_suppressions(self.consumer, [NagPackSuppression(
            id="Serverless-LambdaDLQ",
            reason="invoked by the notifications queue's event source only (synchronously, by Lambda's poller): a "
                   "failed record goes back to the queue and to its dead-letter queue after MAX_RECEIVE_COUNT "
                   "receives (DlqNotEmpty alarms); a function DLQ only serves asynchronous invocations")])

        self.relay = make_function(
            self, "Relay", base, name=names.outbox_relay_function, handler=RELAY_HANDLER, timeout=RELAY_TIMEOUT,
            memory_mb=NOTIFICATIONS_MEMORY_MB, reserved_concurrency=RELAY_CONCURRENCY,
            service=telemetry_names.SERVICE_NOTIFICATIONS,
            description="outbox relay: publishes the events never published to the notifications queue, once a minute")
        self.relay_schedule = _scheduled(self, "RelaySchedule", self.relay, every=RELAY_INTERVAL,
                                         description="paysaga outbox relay: every event reaches the queue",
                                         what="outbox relay")

        self.webhook_delivery = make_function(
            self, "WebhookDelivery", base, name=names.webhook_delivery_function, handler=WEBHOOK_DELIVERY_HANDLER,
            timeout=WEBHOOK_DELIVERY_TIMEOUT, memory_mb=NOTIFICATIONS_MEMORY_MB,
            reserved_concurrency=WEBHOOK_DELIVERY_CONCURRENCY, service=telemetry_names.SERVICE_WEBHOOK_DELIVERY,
            # Server-side request forgery: never to loopback on AWS (the default, written out).
            environment={"WEBHOOKS_ALLOW_LOOPBACK": "false"},
            description="merchant webhooks: POSTs the deliveries that are due (through the NAT), once a minute")
        self.webhook_delivery_schedule = _scheduled(
            self, "WebhookDeliverySchedule", self.webhook_delivery, every=WEBHOOK_DELIVERY_INTERVAL,
            description="paysaga merchant webhooks: due deliveries are sent", what="webhook delivery")

        self.rules: dict[str, events.Rule] = {}
        self.rule_queues: dict[str, sqs.Queue] = {}
        self.rule_dlqs: dict[str, sqs.Queue] = {}
        for rule_name, pattern in event_rules.RULES.items():
            self._rule(rule_name, pattern, names=names, messaging=messaging, key=messages_key)

    @property
    def functions(self) -> list[lambda_.Function]:
        return [self.consumer, self.relay, self.webhook_delivery]

    @property
    def schedules(self) -> list[events.Rule]:
        return [self.relay_schedule, self.webhook_delivery_schedule]

    def _rule(self, rule_name: str, pattern: dict[str, Any], *, names: ResourceNames, messaging: Messaging,
              key: kms.IKey) -> None:
        construct_id = "".join(part.capitalize() for part in rule_name.split("-"))
        dlq = sqs.Queue(self, f"{construct_id}Dlq", queue_name=names.event_rule_dlq(rule_name),
                        retention_period=RULE_QUEUE_RETENTION, encryption=sqs.QueueEncryption.KMS,
                        encryption_master_key=key, enforce_ssl=True)
        NagSuppressions.add_resource_suppressions(dlq, [NagPackSuppression(
            id="Serverless-SQSRedrivePolicy",
            reason=f"the dead-letter queue of the {rule_name} rule (what EventBridge could not deliver) and of its "
                   "queue (what its consumer kept failing): what lands here stays for an engineer (an alarm shows "
                   "it), a redrive of its own would only hide it")])
        queue = sqs.Queue(self, f"{construct_id}Queue", queue_name=names.event_rule_queue(rule_name),
                          retention_period=RULE_QUEUE_RETENTION, encryption=sqs.QueueEncryption.KMS,
                          encryption_master_key=key, enforce_ssl=True,
                          dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=RULE_QUEUE_MAX_RECEIVES))
        rule = events.Rule(self, f"{construct_id}Rule", rule_name=names.event_rule(rule_name),
                           description=f"seed 001: {rule_name} (core/event_rules.py)", event_bus=messaging.bus,
                           event_pattern=event_pattern(pattern), targets=[_QueueTarget(queue, dlq)])
        # EventBridge sends to the queue, and to the DLQ what it could not deliver there, for this rule only. The
        # rule's ARN is written from its name: a reference to the rule would make a cycle through the key's policy
        # (key -> rule -> queue -> key).
        rule_arn = Stack.of(self).format_arn(service="events", resource="rule",
                                             resource_name=f"{names.event_bus}/{names.event_rule(rule_name)}")
        from_this_rule = {"ArnEquals": {"aws:SourceArn": rule_arn}}
        events_principal = iam.ServicePrincipal("events.amazonaws.com")
        for target in (queue, dlq):
            target.add_to_resource_policy(iam.PolicyStatement(
                principals=[events_principal], actions=["sqs:SendMessage"], resources=[target.queue_arn],
                conditions=from_this_rule))
        # Both are encrypted with the messages key: EventBridge encrypts what it sends (AWS's documented key policy
        # for an encrypted SQS target or dead-letter queue), for this rule only.
        key.add_to_resource_policy(iam.PolicyStatement(
            principals=[events_principal], actions=list(EVENTS_KEY_ACTIONS),
            resources=["*"],  # in a key policy, "*" is this key
            conditions=from_this_rule))
        self.rules[rule_name] = rule
        self.rule_queues[rule_name] = queue
        self.rule_dlqs[rule_name] = dlq
