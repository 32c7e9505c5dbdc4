"""Every log group of the stack is made here: KMS-encrypted with the logs key, a retention that fits payments
(config log_retention_days, a year by default), kept when the stack is deleted (RETAIN: an audit trail outlives the
stack that wrote it). Names come from infra/names.py."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aws_cdk import RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

# Some of the retentions CloudWatch Logs offers, in days, shortest first (up to its ten years).
RETENTIONS: Final[tuple[tuple[int, logs.RetentionDays], ...]] = (
    (7, logs.RetentionDays.ONE_WEEK),
    (14, logs.RetentionDays.TWO_WEEKS),
    (30, logs.RetentionDays.ONE_MONTH),
    (90, logs.RetentionDays.THREE_MONTHS),
    (180, logs.RetentionDays.SIX_MONTHS),
    (365, logs.RetentionDays.ONE_YEAR),
    (400, logs.RetentionDays.THIRTEEN_MONTHS),
    (545, logs.RetentionDays.EIGHTEEN_MONTHS),
    (731, logs.RetentionDays.TWO_YEARS),
    (1827, logs.RetentionDays.FIVE_YEARS),
    (3653, logs.RetentionDays.TEN_YEARS),
)


def retention_for(days: int) -> logs.RetentionDays:
    """The shortest of RETENTIONS that keeps logs at least `days` (at most ten years)."""
    for limit, retention in RETENTIONS:
        if limit >= days:
            return retention
    return RETENTIONS[-1][1]


@dataclass(frozen=True)
class LogPolicy:
    """How every log group of the stack is made."""

    key: kms.IKey
    retention: logs.RetentionDays

    def log_group(self, scope: Construct, construct_id: str, name: str) -> logs.LogGroup:
        return logs.LogGroup(scope, construct_id, log_group_name=name, retention=self.retention,
                             encryption_key=self.key, removal_policy=RemovalPolicy.RETAIN)
