"""DynamoDB tables with the keys core/aws_resources.py provisions locally: on-demand, point-in-time recovery."""

from __future__ import annotations

from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

from infra.names import ResourceNames


def _table(scope: Construct, construct_id: str, *, name: str, hash_key: str,
           ttl_attribute: str | None) -> dynamodb.Table:
    return dynamodb.Table(
        scope, construct_id,
        table_name=name,
        partition_key=dynamodb.Attribute(name=hash_key, type=dynamodb.AttributeType.STRING),
        billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
        point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
            point_in_time_recovery_enabled=True),
        time_to_live_attribute=ttl_attribute,
        encryption=dynamodb.TableEncryption.AWS_MANAGED,
    )


class Tables(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, names: ResourceNames) -> None:
        super().__init__(scope, construct_id)
        # Records expire 24 h after completion (DESIGN.md 4); DynamoDB's TTL sweeps them.
        self.idempotency = _table(self, "Idempotency", name=names.idempotency_table, hash_key="pk",
                                  ttl_attribute="expires_at")
        self.worker_slots = _table(self, "WorkerSlots", name=names.worker_slots_table, hash_key="slot",
                                   ttl_attribute=None)
