"""The stack's customer managed KMS keys, yearly rotation on, kept when the stack goes (what they encrypted outlives
it: retained log groups).

- `logs`: every log group of the stack (functions, state machine, API access, WAF, VPC flow logs, PostgreSQL). Its
  policy lets CloudWatch Logs of this region use it for this account's log groups only.
- `messages`: the SNS topics (payment events, alarms) and the event bus rules' queues (infra/notifications.py). A
  customer managed key, because the AWS managed alias/aws/sns key's policy cannot let a service principal (CloudWatch
  alarms, EventBridge) publish; infra/alarms.py adds CloudWatch to its policy, infra/notifications.py EventBridge for
  each rule.
- `data`: the reconciliation's buckets (settlement reports, the ledger landed as Parquet, Athena's results). The
  readers and writers (the reconciliation function, Firehose, Athena's users) use it through S3 only, with their own
  IAM permissions (the key policy's default: this account's IAM decides).
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Aws, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from infra.names import ResourceNames

# What CloudWatch Logs does with a log group's key (AWS's documented key policy for encrypted log groups).
LOGS_KEY_ACTIONS: Final[tuple[str, ...]] = (
    "kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext", "kms:DescribeKey",
)


class Keys(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, names: ResourceNames) -> None:
        super().__init__(scope, construct_id)
        self.logs = kms.Key(
            self, "Logs", alias=names.logs_key_alias, enable_key_rotation=True,
            description=f"{names.prefix}: every log group of the stack",
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.logs.add_to_resource_policy(iam.PolicyStatement(
            sid="CloudWatchLogsOfThisAccount",
            principals=[iam.ServicePrincipal(f"logs.{Aws.REGION}.amazonaws.com")],
            actions=list(LOGS_KEY_ACTIONS),
            resources=["*"],  # in a key policy, "*" is this key
            conditions={"ArnLike": {"kms:EncryptionContext:aws:logs:arn":
                                    f"arn:{Aws.PARTITION}:logs:{Aws.REGION}:{Aws.ACCOUNT_ID}:log-group:*"}},
        ))
        self.messages = kms.Key(
            self, "Messages", alias=names.messages_key_alias, enable_key_rotation=True,
            description=f"{names.prefix}: the SNS topics' messages (payment events, alarms)",
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.data = kms.Key(
            self, "Data", alias=names.data_key_alias, enable_key_rotation=True,
            description=f"{names.prefix}: settlement reports, the landed ledger, Athena's query results",
            removal_policy=RemovalPolicy.RETAIN,
        )
