"""Reconciliation on AWS (DESIGN.md 8c): the function that imports settlement data, matches it against the ledger and
lands the ledger's entries as Parquet; what invokes it; where the reports and the landed ledger live; and what it
announces new discrepancies on.

- The function (saga.reconcile.handler) is invoked asynchronously only: by three EventBridge Scheduler schedules (the
  hourly run, the daily aged run of each settlement date's T+7/14/30, the daily landing of the previous UTC day) and
  by the settlement bucket's notifications (a report put under settlements/adyen/ or settlements/sandbox/; Stripe's
  balance transactions are fetched by the hourly run). Reserved concurrency 1: runs never overlap (a run reads what
  another would be writing), and Lambda's asynchronous queue holds an invocation that meets a running one (a throttled
  asynchronous event is retried by Lambda for up to its maximum event age, 6 hours by default). An invocation that
  keeps failing (Lambda's 2 retries) goes to the function's dead-letter queue, which is also the schedules' (what
  Scheduler could not deliver after its retries).
- The settlement bucket: KMS (the stack's data key), versioned, SSL only, no public access, server access logs,
  retained; reports are financial records: kept for good, moved to cheaper storage as they age.
- The ledger lands through an Amazon Data Firehose stream: JSON records (core.ledger_landing.LANDING_COLUMNS) are
  converted to Parquet against a Glue table declared from the same columns, and partitioned by the entry's UTC date
  (`ledger-entries/dt=YYYY-MM-DD/`) in the landing bucket. Athena reads the table (partition projection: no crawler,
  no MSCK REPAIR) in its own workgroup, whose results are encrypted in the landing bucket.
"""

from __future__ import annotations

import json
from typing import Final

from aws_cdk import Aws, Duration, RemovalPolicy, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import Construct

from core import telemetry_names
from core.gateways import GATEWAY_NAMES
from core.ledger_landing import LANDING_COLUMNS, LANDING_PARTITION, LANDING_PREFIX
from infra.environment import reconciliation_environment
from infra.functions import FunctionBase, make_function

HANDLER: Final[str] = "saga.reconcile.handler"
S3_ACCESS_LOGS_BY_POLICY: Final[str] = "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy"
# A run imports report files and runs the matcher's SQL: generous. Memory (and so CPU) for parsing the reports.
TIMEOUT: Final[Duration] = Duration.minutes(5)
MEMORY_MB: Final[int] = 1_024
# One run at a time (see the module's docstring).
CONCURRENCY: Final[int] = 1

# The schedules, in UTC: name (infra/names.py schedule()), expression, the handler's input. The hourly run at a
# quarter past, so it never meets the daily ones on the hour; the ledger's landing of the previous UTC day once the
# day is closed (entries of a late transaction are in by then); the aged runs (T+7/14/30 of each settlement date)
# after the night's reports have arrived.
SCHEDULE_TIMEZONE: Final[str] = "UTC"
SCHEDULES: Final[tuple[tuple[str, str, dict[str, str]], ...]] = (
    ("reconciliation-hourly", "cron(15 * * * ? *)", {"action": "run", "schedule": "hourly"}),
    ("reconciliation-aged", "cron(0 6 * * ? *)", {"action": "run", "schedule": "aged"}),
    ("reconciliation-landing", "cron(30 1 * * ? *)", {"action": "land"}),
)
# Scheduler's own retries of an invocation it could not deliver (Lambda unavailable, throttled at the API): a few,
# within an hour (the hourly run's next tick is its retry), then the dead-letter queue.
SCHEDULE_RETRIES: Final[int] = 3
SCHEDULE_MAX_EVENT_AGE_S: Final[int] = 3_600
# How long a dead-lettered invocation waits for an engineer (SQS's maximum).
DLQ_RETENTION: Final[Duration] = Duration.days(14)

# Settlement files, each gateway under its own prefix (saga/reconcile.py reads `settlements/<gateway>/`): Adyen's
# reports, the sandbox's feeds, and Stripe balance transactions exported as JSON (the hourly run also fetches those
# through Stripe's API).
SETTLEMENT_PREFIX: Final[str] = "settlements/"
REPORT_GATEWAYS: Final[tuple[str, ...]] = GATEWAY_NAMES

# The landing bucket's prefixes besides LANDING_PREFIX: what Firehose could not convert or deliver, Athena's results.
LANDING_ERRORS_PREFIX: Final[str] = "ledger-errors/"
ATHENA_RESULTS_PREFIX: Final[str] = "athena-results/"
LANDING_TABLE: Final[str] = "ledger_entries"
# Dynamic partitioning: the partition key is the entry's UTC date, the first ten characters of created_at, which the
# handler writes in UTC as "2026-12-03 10:11:12.123456" (saga/reconcile.py: one of the forms Firehose's OpenX JSON
# deserializer reads for a Glue `timestamp` column, "yyyy-MM-dd HH:mm:ss[.S]").
PARTITION_QUERY: Final[str] = f"{{{LANDING_PARTITION}: .created_at[0:10]}}"
LANDING_OBJECT_PREFIX: Final[str] = (
    f"{LANDING_PREFIX}{LANDING_PARTITION}=!{{partitionKeyFromQuery:{LANDING_PARTITION}}}/")
LANDING_ERROR_OUTPUT_PREFIX: Final[str] = (
    f"{LANDING_ERRORS_PREFIX}!{{firehose:error-output-type}}/!{{timestamp:yyyy-MM-dd}}/")
# Parquet conversion needs a buffer of at least 64 MiB; a day of entries lands in one invocation, so the interval
# decides when its files appear (5 minutes after the landing).
LANDING_BUFFER_MB: Final[int] = 128
LANDING_BUFFER_S: Final[int] = 300
# How long Firehose retries a delivery to a dynamic partition before writing the records to the error prefix.
LANDING_RETRY_S: Final[int] = 300
# Athena's partition projection: every day since this one is a partition (no crawler, no MSCK REPAIR TABLE).
PROJECTION_START: Final[str] = "2024-01-01"
# A query scanning more than this is cancelled (the landed ledger is small; a runaway query is a mistake).
ATHENA_BYTES_SCANNED_CUTOFF: Final[int] = 10 * 1024**3
ATHENA_RESULTS_EXPIRE: Final[Duration] = Duration.days(30)

# What Firehose does with each (AWS's documented permissions for an S3 destination, split by what they apply to; and
# for format conversion, the Glue table's schema).
LANDING_BUCKET_ACTIONS: Final[tuple[str, ...]] = (
    "s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads")
LANDING_OBJECT_ACTIONS: Final[tuple[str, ...]] = ("s3:AbortMultipartUpload", "s3:GetObject", "s3:PutObject")
LANDING_SCHEMA_ACTIONS: Final[tuple[str, ...]] = ("glue:GetTable", "glue:GetTableVersion", "glue:GetTableVersions")
LANDING_KEY_ACTIONS: Final[tuple[str, ...]] = ("kms:GenerateDataKey", "kms:Decrypt")
LANDING_LOG_ACTIONS: Final[tuple[str, ...]] = ("logs:PutLogEvents",)
LANDING_LOG_STREAM: Final[str] = "DestinationDelivery"
# What Scheduler does with its role: invoke the function, dead-letter what it could not deliver.
SCHEDULER_ACTIONS: Final[tuple[str, ...]] = ("lambda:InvokeFunction",)
SCHEDULER_DLQ_ACTIONS: Final[tuple[str, ...]] = ("sqs:SendMessage",)

# The kinds of discrepancy a run opens (ledger/reconciliation/schema.py DISCREPANCY_KINDS; infra may not import the
# ledger, tests/unit/infra/test_reconciliation.py checks they are the same): the alarm sums the metric over them.
DISCREPANCY_KINDS: Final[tuple[str, ...]] = (
    "amount_mismatch", "currency_mismatch", "fee_mismatch", "missing_from_settlement", "unknown_to_ledger",
    "duplicate", "payout_mismatch",
)


def object_arn(bucket_arn: str, prefix: str) -> str:
    """Every object under `prefix` ('settlements/') of a bucket."""
    return f"{bucket_arn}/{prefix}*"


class Reconciliation(Construct):
    def __init__(self, scope: Construct, construct_id: str, base: FunctionBase, *, data_key: kms.IKey,
                 messages_key: kms.IKey, access_log_retention_days: int) -> None:
        super().__init__(scope, construct_id)
        # Server access logs are delivered by the logging service under the log bucket's policy (not its ACL: the
        # buckets own their objects, ACLs off). Set here, not in cdk.json, so every synthesis (the CLI's, a plain
        # `python -m infra.app`, the tests') builds the same buckets.
        self.node.set_context(S3_ACCESS_LOGS_BY_POLICY, True)
        names = base.names
        stack = Stack.of(self)
        # The buckets' names are written out (not references) so that the settlement bucket's notification, the
        # function's permission for S3 and the function's statements name the bucket without a cycle
        # (bucket -> permission -> function -> bucket).
        self.settlement_bucket_name = names.settlement_bucket(Aws.ACCOUNT_ID, Aws.REGION)
        self.settlement_bucket_arn = f"arn:{Aws.PARTITION}:s3:::{self.settlement_bucket_name}"
        landing_bucket_name = names.landing_bucket(Aws.ACCOUNT_ID, Aws.REGION)

        # ---- Buckets ----
        self.access_logs = s3.Bucket(
            self, "AccessLogs", bucket_name=names.access_log_bucket(Aws.ACCOUNT_ID, Aws.REGION),
            # S3 server access logging delivers to SSE-S3 buckets only.
            encryption=s3.BucketEncryption.S3_MANAGED, block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True, minimum_tls_version=1.2, versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(
                id="audit-retention", expiration=Duration.days(access_log_retention_days),
                noncurrent_version_expiration=Duration.days(30),
                abort_incomplete_multipart_upload_after=Duration.days(7))],
            removal_policy=RemovalPolicy.RETAIN)
        NagSuppressions.add_resource_suppressions(self.access_logs, [NagPackSuppression(
            id="AwsSolutions-S1",
            reason="this is the bucket the settlement and landing buckets' server access logs go to: logging its own "
                   "accesses into itself would log every log delivery, without end")])
        self.settlements = self._data_bucket(
            "Settlements", name=self.settlement_bucket_name, key=data_key, logs_prefix="settlements/",
            # Financial records: kept for good (no expiration, a replaced report's earlier version too), moved to
            # cheaper storage once no run reads them any more (the aged runs end at T+30).
            lifecycle_rules=[s3.LifecycleRule(
                id="financial-records",
                transitions=[s3.Transition(storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                                           transition_after=Duration.days(90)),
                             s3.Transition(storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL,
                                           transition_after=Duration.days(365))],
                noncurrent_version_transitions=[s3.NoncurrentVersionTransition(
                    storage_class=s3.StorageClass.GLACIER_INSTANT_RETRIEVAL, transition_after=Duration.days(30))],
                abort_incomplete_multipart_upload_after=Duration.days(7))])
        self.landing = self._data_bucket(
            "Landing", name=landing_bucket_name, key=data_key, logs_prefix="landing/",
            # The landed ledger is a copy of PostgreSQL (the book of record) that Athena reads: kept, Standard (Athena
            # scans it); a deleted or replaced object's version for 30 days. Athena's results are scratch.
            lifecycle_rules=[
                s3.LifecycleRule(id="landed-ledger", noncurrent_version_expiration=Duration.days(30),
                                 abort_incomplete_multipart_upload_after=Duration.days(7)),
                s3.LifecycleRule(id="athena-results", prefix=ATHENA_RESULTS_PREFIX,
                                 expiration=ATHENA_RESULTS_EXPIRE),
            ])

        # ---- The alerts topic and the dead-letter queue ----
        self.alerts_topic = sns.Topic(self, "Alerts", topic_name=names.recon_alerts_topic, enforce_ssl=True,
                                      master_key=messages_key)
        self.dlq = sqs.Queue(self, "Dlq", queue_name=names.reconciliation_dlq, retention_period=DLQ_RETENTION,
                             encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True)
        dlq_reason = ("the dead-letter queue of the reconciliation function (asynchronous invocations that failed "
                      "after Lambda's retries) and of its schedules (invocations Scheduler could not deliver): what "
                      "lands here stays for an engineer (ReconciliationDlqNotEmpty alarms); cdk-nag only recognizes "
                      "a queue's redrive target as a DLQ, and a redrive of its own would only hide it")
        NagSuppressions.add_resource_suppressions(self.dlq, [
            NagPackSuppression(id="AwsSolutions-SQS3", reason=dlq_reason),
            NagPackSuppression(id="Serverless-SQSRedrivePolicy", reason=dlq_reason)])

        # ---- The ledger's landing: Glue table, Firehose stream, Athena workgroup ----
        self.landing_stream_name = names.ledger_landing_stream
        self.landing_stream = self._landing(names.glue_database, landing_bucket_name, data_key, base)
        self.workgroup = athena.CfnWorkGroup(
            self, "Workgroup", name=names.athena_workgroup, state="ENABLED", recursive_delete_option=True,
            description=f"{names.prefix}: queries of the landed ledger ({names.glue_database}.{LANDING_TABLE})",
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True, publish_cloud_watch_metrics_enabled=True,
                bytes_scanned_cutoff_per_query=ATHENA_BYTES_SCANNED_CUTOFF,
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{landing_bucket_name}/{ATHENA_RESULTS_PREFIX}",
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=data_key.key_arn))))
        self.workgroup.node.add_dependency(self.landing)

        # ---- The function ----
        self.function = make_function(
            self, "Function", base, name=names.reconciliation_function, handler=HANDLER, timeout=TIMEOUT,
            memory_mb=MEMORY_MB, reserved_concurrency=CONCURRENCY,
            service=telemetry_names.SERVICE_RECONCILIATION, dead_letter_queue=self.dlq,
            environment=reconciliation_environment(
                recon_alerts_topic=names.recon_alerts_topic, settlement_bucket=self.settlement_bucket_name,
                ledger_landing_stream=names.ledger_landing_stream),
            description="reconciliation: settlement imports, matching against the ledger, the ledger's landing")
        # The function's environment names the stream and the topic by name: what it needs them to exist.
        self.function.node.add_dependency(self.landing_stream, self.alerts_topic)

        # ---- What invokes it: the settlement bucket's notifications, the schedules ----
        from_settlements = lambda_.CfnPermission(
            self, "SettlementReportsInvoke", action="lambda:InvokeFunction", function_name=self.function.function_arn,
            principal="s3.amazonaws.com", source_account=Aws.ACCOUNT_ID, source_arn=self.settlement_bucket_arn)
        bucket = self.settlements.node.default_child
        assert isinstance(bucket, s3.CfnBucket)
        bucket.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(lambda_configurations=[
            s3.CfnBucket.LambdaConfigurationProperty(
                event="s3:ObjectCreated:*", function=self.function.function_arn,
                filter=s3.CfnBucket.NotificationFilterProperty(s3_key=s3.CfnBucket.S3KeyFilterProperty(rules=[
                    s3.CfnBucket.FilterRuleProperty(name="prefix", value=f"{SETTLEMENT_PREFIX}{gateway}/")])))
            for gateway in REPORT_GATEWAYS])
        # S3 checks it may invoke the function when the notification is put.
        bucket.node.add_dependency(from_settlements)

        self.scheduler_role = iam.Role(
            self, "SchedulerRole",
            assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com", conditions={
                "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID},
                # These schedules only (the default schedule group's).
                "ArnEquals": {"aws:SourceArn": [
                    stack.format_arn(service="scheduler", resource="schedule",
                                     resource_name=f"default/{names.schedule(schedule_name)}")
                    for schedule_name, _, _ in SCHEDULES]}}),
            description=f"{names.prefix} reconciliation schedules: invoke the function, dead-letter what failed",
            inline_policies={"Invoke": iam.PolicyDocument(statements=[
                iam.PolicyStatement(actions=list(SCHEDULER_ACTIONS), resources=[self.function.function_arn]),
                iam.PolicyStatement(actions=list(SCHEDULER_DLQ_ACTIONS), resources=[self.dlq.queue_arn])])})
        self.schedules: list[scheduler.CfnSchedule] = []
        for schedule_name, expression, payload in SCHEDULES:
            construct_id_ = "".join(part.capitalize() for part in schedule_name.split("-"))
            self.schedules.append(scheduler.CfnSchedule(
                self, f"{construct_id_}Schedule", name=names.schedule(schedule_name),
                description=f"{names.prefix}: {json.dumps(payload)} ({expression} {SCHEDULE_TIMEZONE})",
                schedule_expression=expression, schedule_expression_timezone=SCHEDULE_TIMEZONE, state="ENABLED",
                flexible_time_window=scheduler.CfnSchedule.FlexibleTimeWindowProperty(mode="OFF"),
                target=scheduler.CfnSchedule.TargetProperty(
                    arn=self.function.function_arn, role_arn=self.scheduler_role.role_arn,
                    input=json.dumps(payload),
                    retry_policy=scheduler.CfnSchedule.RetryPolicyProperty(
                        maximum_retry_attempts=SCHEDULE_RETRIES,
                        maximum_event_age_in_seconds=SCHEDULE_MAX_EVENT_AGE_S),
                    dead_letter_config=scheduler.CfnSchedule.DeadLetterConfigProperty(arn=self.dlq.queue_arn))))

    # ---- Helpers -----------------------------------------------------------------------------------------------

    def _data_bucket(self, construct_id: str, *, name: str, key: kms.IKey, logs_prefix: str,
                     lifecycle_rules: list[s3.LifecycleRule]) -> s3.Bucket:
        return s3.Bucket(
            self, construct_id, bucket_name=name, encryption=s3.BucketEncryption.KMS, encryption_key=key,
            bucket_key_enabled=True, block_public_access=s3.BlockPublicAccess.BLOCK_ALL, enforce_ssl=True,
            minimum_tls_version=1.2, versioned=True, object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=self.access_logs, server_access_logs_prefix=logs_prefix,
            lifecycle_rules=lifecycle_rules, removal_policy=RemovalPolicy.RETAIN)

    def _landing(self, database_name: str, bucket_name: str, key: kms.IKey,
                 base: FunctionBase) -> firehose.CfnDeliveryStream:
        names = base.names
        stack = Stack.of(self)
        bucket_arn = f"arn:{Aws.PARTITION}:s3:::{bucket_name}"
        database = glue.CfnDatabase(
            self, "Database", catalog_id=Aws.ACCOUNT_ID,
            database_input=glue.CfnDatabase.DatabaseInputProperty(
                name=database_name, description=f"{names.prefix}: the ledger landed as Parquet, for Athena"))
        location = f"s3://{bucket_name}/{LANDING_PREFIX}"
        self.table = glue.CfnTable(
            self, "Table", catalog_id=Aws.ACCOUNT_ID, database_name=database_name,
            table_input=glue.CfnTable.TableInputProperty(
                name=LANDING_TABLE, table_type="EXTERNAL_TABLE",
                description="ledger entries, one row each (core/ledger_landing.py), partitioned by UTC date",
                parameters={
                    "classification": "parquet", "EXTERNAL": "TRUE", "parquet.compression": "SNAPPY",
                    "projection.enabled": "true",
                    f"projection.{LANDING_PARTITION}.type": "date",
                    f"projection.{LANDING_PARTITION}.format": "yyyy-MM-dd",
                    f"projection.{LANDING_PARTITION}.range": f"{PROJECTION_START},NOW",
                    f"projection.{LANDING_PARTITION}.interval": "1",
                    f"projection.{LANDING_PARTITION}.interval.unit": "DAYS",
                    "storage.location.template": f"{location}{LANDING_PARTITION}=${{{LANDING_PARTITION}}}/",
                },
                partition_keys=[glue.CfnTable.ColumnProperty(name=LANDING_PARTITION, type="string")],
                storage_descriptor=glue.CfnTable.StorageDescriptorProperty(
                    columns=[glue.CfnTable.ColumnProperty(name=name, type=type_) for name, type_ in LANDING_COLUMNS],
                    location=location,
                    input_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat",
                    output_format="org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat",
                    serde_info=glue.CfnTable.SerdeInfoProperty(
                        serialization_library="org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                        parameters={"serialization.format": "1"}))))
        self.table.node.add_dependency(database)

        log_group = base.log_policy.log_group(self, "LandingLogs", names.ledger_landing_log_group)
        logs.LogStream(self, "LandingLogStream", log_group=log_group, log_stream_name=LANDING_LOG_STREAM,
                       removal_policy=RemovalPolicy.RETAIN)
        glue_arns = [
            stack.format_arn(service="glue", resource="catalog"),
            stack.format_arn(service="glue", resource="database", resource_name=database_name),
            stack.format_arn(service="glue", resource="table", resource_name=f"{database_name}/{LANDING_TABLE}"),
        ]
        objects = [object_arn(bucket_arn, LANDING_PREFIX), object_arn(bucket_arn, LANDING_ERRORS_PREFIX)]
        role = iam.Role(
            self, "LandingRole",
            assumed_by=iam.ServicePrincipal("firehose.amazonaws.com",
                                            conditions={"StringEquals": {"sts:ExternalId": Aws.ACCOUNT_ID}}),
            description=f"{names.ledger_landing_stream}: writes the landed ledger, reads its Glue schema, logs",
            inline_policies={"Landing": iam.PolicyDocument(statements=[
                iam.PolicyStatement(actions=list(LANDING_BUCKET_ACTIONS), resources=[bucket_arn]),
                iam.PolicyStatement(actions=list(LANDING_OBJECT_ACTIONS), resources=objects),
                iam.PolicyStatement(actions=list(LANDING_SCHEMA_ACTIONS), resources=glue_arns),
                iam.PolicyStatement(
                    actions=list(LANDING_KEY_ACTIONS), resources=[key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"s3.{Aws.REGION}.amazonaws.com"},
                                # With S3 Bucket Keys the encryption context is the bucket's ARN.
                                "StringLike": {"kms:EncryptionContext:aws:s3:arn": [bucket_arn, *objects]}}),
                iam.PolicyStatement(actions=list(LANDING_LOG_ACTIONS), resources=[log_group.log_group_arn]),
            ])})
        NagSuppressions.add_resource_suppressions(role, [NagPackSuppression(
            id="AwsSolutions-IAM5",
            applies_to=[RegexAppliesTo(regex=f"/^Resource::.*/({LANDING_PREFIX}|{LANDING_ERRORS_PREFIX})\\*$/g")],
            reason="Firehose names each object it writes (dynamic partitions, its own file names): it may write any "
                   f"object under {LANDING_PREFIX} and {LANDING_ERRORS_PREFIX} of the landing bucket, nothing else")])

        stream = firehose.CfnDeliveryStream(
            self, "LandingStream", delivery_stream_name=names.ledger_landing_stream,
            delivery_stream_type="DirectPut",
            # The records at rest in the stream's buffer: AWS owned key (the S3 objects use the data key).
            delivery_stream_encryption_configuration_input=(
                firehose.CfnDeliveryStream.DeliveryStreamEncryptionConfigurationInputProperty(
                    key_type="AWS_OWNED_CMK")),
            extended_s3_destination_configuration=firehose.CfnDeliveryStream.ExtendedS3DestinationConfigurationProperty(
                bucket_arn=bucket_arn, role_arn=role.role_arn,
                prefix=LANDING_OBJECT_PREFIX, error_output_prefix=LANDING_ERROR_OUTPUT_PREFIX,
                buffering_hints=firehose.CfnDeliveryStream.BufferingHintsProperty(
                    size_in_m_bs=LANDING_BUFFER_MB, interval_in_seconds=LANDING_BUFFER_S),
                compression_format="UNCOMPRESSED",  # Parquet compresses its own pages (Snappy)
                encryption_configuration=firehose.CfnDeliveryStream.EncryptionConfigurationProperty(
                    kms_encryption_config=firehose.CfnDeliveryStream.KMSEncryptionConfigProperty(
                        awskms_key_arn=key.key_arn)),
                cloud_watch_logging_options=firehose.CfnDeliveryStream.CloudWatchLoggingOptionsProperty(
                    enabled=True, log_group_name=log_group.log_group_name, log_stream_name=LANDING_LOG_STREAM),
                s3_backup_mode="Disabled",
                dynamic_partitioning_configuration=firehose.CfnDeliveryStream.DynamicPartitioningConfigurationProperty(
                    enabled=True, retry_options=firehose.CfnDeliveryStream.RetryOptionsProperty(
                        duration_in_seconds=LANDING_RETRY_S)),
                processing_configuration=firehose.CfnDeliveryStream.ProcessingConfigurationProperty(
                    enabled=True, processors=[firehose.CfnDeliveryStream.ProcessorProperty(
                        type="MetadataExtraction", parameters=[
                            firehose.CfnDeliveryStream.ProcessorParameterProperty(
                                parameter_name="MetadataExtractionQuery", parameter_value=PARTITION_QUERY),
                            firehose.CfnDeliveryStream.ProcessorParameterProperty(
                                parameter_name="JsonParsingEngine", parameter_value="JQ-1.6")])]),
                data_format_conversion_configuration=(
                    firehose.CfnDeliveryStream.DataFormatConversionConfigurationProperty(
                        enabled=True,
                        input_format_configuration=firehose.CfnDeliveryStream.InputFormatConfigurationProperty(
                            deserializer=firehose.CfnDeliveryStream.DeserializerProperty(
                                open_x_json_ser_de=firehose.CfnDeliveryStream.OpenXJsonSerDeProperty())),
                        output_format_configuration=firehose.CfnDeliveryStream.OutputFormatConfigurationProperty(
                            serializer=firehose.CfnDeliveryStream.SerializerProperty(
                                parquet_ser_de=firehose.CfnDeliveryStream.ParquetSerDeProperty(
                                    compression="SNAPPY"))),
                        schema_configuration=firehose.CfnDeliveryStream.SchemaConfigurationProperty(
                            catalog_id=Aws.ACCOUNT_ID, database_name=database_name, table_name=LANDING_TABLE,
                            region=Aws.REGION, role_arn=role.role_arn, version_id="LATEST"))),
            ))
        stream.node.add_dependency(self.table, self.landing, log_group)
        return stream
