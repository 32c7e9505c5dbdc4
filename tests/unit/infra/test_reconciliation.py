"""Reconciliation on AWS (DESIGN.md 8c): the function and what invokes it (three schedules, the settlement bucket's
notifications), the buckets, the ledger's landing (Firehose -> Parquet by date, a Glue table of core.ledger_landing's
columns, an Athena workgroup), the alerts topic, the roles, the alarms and the dashboard row."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core import telemetry_names
from core.gateways import GATEWAY_NAMES
from core.ledger_landing import LANDING_COLUMNS, LANDING_PARTITION, LANDING_PREFIX
from infra.functions import VPC_ACCESS_ACTIONS, XRAY_ACTIONS
from infra.permissions import (
    LANDING_PUT_ACTIONS,
    OBJECT_KEY_ACTIONS,
    OBJECT_READ_ACTIONS,
    SECRET_READ_ACTIONS,
    TOPIC_KEY_ACTIONS,
    TOPIC_PUBLISH_ACTIONS,
)
from infra.reconciliation import (
    ATHENA_RESULTS_PREFIX,
    CONCURRENCY,
    DISCREPANCY_KINDS,
    LANDING_BUCKET_ACTIONS,
    LANDING_ERRORS_PREFIX,
    LANDING_KEY_ACTIONS,
    LANDING_LOG_ACTIONS,
    LANDING_OBJECT_ACTIONS,
    LANDING_SCHEMA_ACTIONS,
    LANDING_TABLE,
)
from ledger.reconciliation.schema import DISCREPANCY_KINDS as LEDGER_DISCREPANCY_KINDS
from tests.unit.infra.support import (
    NAMES,
    RECONCILIATION,
    Synth,
    actions_of,
    functions_by_name,
    join_text,
    only,
    policy_statements_of_role,
    queue_id,
    resources_of,
    settings_default,
    statements_of_function,
)
from tests.unit.infra.test_alarms import AlarmOn, _alarm, _never, _reading
from tests.unit.infra.test_dashboard import _flatten, _metrics, _restore

ACCOUNT, REGION, PARTITION = '{"Ref": "AWS::AccountId"}', '{"Ref": "AWS::Region"}', '{"Ref": "AWS::Partition"}'
SETTLEMENT_BUCKET = NAMES.settlement_bucket(ACCOUNT, REGION)
LANDING_BUCKET = NAMES.landing_bucket(ACCOUNT, REGION)
ACCESS_LOG_BUCKET = NAMES.access_log_bucket(ACCOUNT, REGION)
SCHEDULES = {
    "cron(15 * * * ? *)": {"action": "run", "schedule": "hourly"},
    "cron(0 6 * * ? *)": {"action": "run", "schedule": "aged"},
    "cron(30 1 * * ? *)": {"action": "land"},
}


def _function(synth: Synth) -> tuple[str, dict[str, Any]]:
    return functions_by_name(synth)[RECONCILIATION]


def _bucket(synth: Synth, name: str) -> tuple[str, dict[str, Any]]:
    (found,) = [(logical_id, r) for logical_id, r in synth.of_type("AWS::S3::Bucket").items()
                if join_text(r["Properties"]["BucketName"]) == name]
    return found


def _ref_or_att(value: Any) -> str:
    """The logical id a Ref or GetAtt names."""
    return str(value["Ref"]) if "Ref" in value else str(value["Fn::GetAtt"][0])


def _by_resource(statements: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Resource (as text) -> the actions allowed on it, over all statements."""
    found: dict[str, set[str]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        for resource in resources_of(statement):
            found.setdefault(join_text(resource), set()).update(actions_of(statement))
    return found


def _stream(synth: Synth) -> tuple[str, dict[str, Any]]:
    return only(synth.of_type("AWS::KinesisFirehose::DeliveryStream"))


# ---- The function -----------------------------------------------------------------------------------------------


def test_the_function_runs_the_handler_with_its_resources_in_its_environment_one_run_at_a_time(synth: Synth) -> None:
    _, props = _function(synth)
    assert props["Handler"] == "saga.reconcile.handler"
    assert props["Timeout"] == 300 and props["MemorySize"] == 1_024
    # One run at a time: Lambda's asynchronous queue holds what meets a running one.
    assert props["ReservedConcurrentExecutions"] == CONCURRENCY == 1
    variables = props["Environment"]["Variables"]
    assert variables["POWERTOOLS_SERVICE_NAME"] == telemetry_names.SERVICE_RECONCILIATION
    assert variables["RECON_ALERTS_TOPIC"] == NAMES.recon_alerts_topic == settings_default("recon_alerts_topic")
    assert join_text(variables["SETTLEMENT_BUCKET"]) == SETTLEMENT_BUCKET
    _, stream = _stream(synth)
    assert variables["LEDGER_LANDING_STREAM"] == stream["Properties"]["DeliveryStreamName"] == (
        NAMES.ledger_landing_stream)
    assert variables["GATEWAY_SECRETS_ARN"]
    # What failed its asynchronous retries goes to the dead-letter queue.
    assert props["DeadLetterConfig"] == {"TargetArn": {"Fn::GetAtt": [queue_id(synth, NAMES.reconciliation_dlq),
                                                                       "Arn"]}}
    # Nobody else reads the reconciliation's resources.
    for name, (_, other) in functions_by_name(synth).items():
        if name != RECONCILIATION:
            assert not {"RECON_ALERTS_TOPIC", "SETTLEMENT_BUCKET", "LEDGER_LANDING_STREAM"} & set(
                other["Environment"]["Variables"]), name


def test_the_function_role_holds_exactly_the_calls_its_code_makes(synth: Synth) -> None:
    _, props = _function(synth)
    statements = statements_of_function(synth, props)
    for statement in statements:
        assert not [a for a in actions_of(statement) if "*" in a], statement
    by_resource = _by_resource(statements)
    (topic_id,) = [logical_id for logical_id, r in synth.of_type("AWS::SNS::Topic").items()
                   if r["Properties"]["TopicName"] == NAMES.recon_alerts_topic]
    keys = {alias["Properties"]["AliasName"]: alias["Properties"]["TargetKeyId"]["Fn::GetAtt"][0]
            for alias in synth.of_type("AWS::KMS::Alias").values()}
    stream_id, _ = _stream(synth)
    database_secret = props["Environment"]["Variables"]["DATABASE_SECRET_ARN"]
    gateway_secret = props["Environment"]["Variables"]["GATEWAY_SECRETS_ARN"]
    dlq = {"Fn::GetAtt": [queue_id(synth, NAMES.reconciliation_dlq), "Arn"]}
    expected = {
        join_text({"Fn::GetAtt": [props["LoggingConfig"]["LogGroup"]["Ref"], "Arn"]}): {
            "logs:CreateLogStream", "logs:PutLogEvents"},
        "*": set(XRAY_ACTIONS),
        join_text(database_secret): set(SECRET_READ_ACTIONS),
        join_text(gateway_secret): set(SECRET_READ_ACTIONS),
        f"arn:{PARTITION}:s3:::{SETTLEMENT_BUCKET}/settlements/*": set(OBJECT_READ_ACTIONS),
        join_text({"Fn::GetAtt": [keys[NAMES.data_key_alias], "Arn"]}): set(OBJECT_KEY_ACTIONS),
        join_text({"Fn::GetAtt": [stream_id, "Arn"]}): set(LANDING_PUT_ACTIONS),
        join_text({"Ref": topic_id}): set(TOPIC_PUBLISH_ACTIONS),
        join_text({"Fn::GetAtt": [keys[NAMES.messages_key_alias], "Arn"]}): set(TOPIC_KEY_ACTIONS),
        join_text(dlq): {"sqs:SendMessage"},
    }
    # On "*": X-Ray, and the VPC's ENI actions of the managed policy every function shares (test_permissions.py).
    assert by_resource.pop("*") <= set(XRAY_ACTIONS) | set(VPC_ACCESS_ACTIONS)
    expected.pop("*")
    assert by_resource == expected
    assert set(TOPIC_PUBLISH_ACTIONS) == {"sns:CreateTopic", "sns:Publish"}  # the lookup by name is CreateTopic
    assert set(LANDING_PUT_ACTIONS) == {"firehose:PutRecordBatch"} and set(OBJECT_READ_ACTIONS) == {"s3:GetObject"}
    # The data key only through S3.
    (decrypt,) = [s for s in statements if actions_of(s) == set(OBJECT_KEY_ACTIONS)]
    assert join_text(decrypt["Condition"]["StringEquals"]["kms:ViaService"]) == f"s3.{REGION}.amazonaws.com"


def test_the_handler_is_in_the_code_asset(synth: Synth) -> None:
    _, props = _function(synth)
    module, _, function = props["Handler"].rpartition(".")
    source = synth.asset(props["Code"]["S3Key"]) / (module.replace(".", "/") + ".py")
    assert source.is_file()
    assert f"def {function}(" in source.read_text()


# ---- What invokes it ---------------------------------------------------------------------------------------------


def test_three_schedules_invoke_it_with_their_inputs_in_utc_with_retries_and_a_dead_letter_queue(synth: Synth) -> None:
    function_id, _ = _function(synth)
    schedules = [r["Properties"] for r in synth.of_type("AWS::Scheduler::Schedule").values()]
    assert {s["ScheduleExpression"]: json.loads(s["Target"]["Input"]) for s in schedules} == SCHEDULES
    dlq_id = queue_id(synth, NAMES.reconciliation_dlq)
    role_ids = set()
    for schedule in schedules:
        assert schedule["ScheduleExpressionTimezone"] == "UTC"
        assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"} and schedule["State"] == "ENABLED"
        assert schedule["Name"].startswith(f"{NAMES.prefix}-")
        target = schedule["Target"]
        assert target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
        assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
        assert 60 <= target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 3_600
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": [dlq_id, "Arn"]}}
        role_ids.add(target["RoleArn"]["Fn::GetAtt"][0])
    (role_id,) = role_ids
    # Scheduler's role: invoke exactly this function (no version or alias wildcard), dead-letter to its queue.
    assert _by_resource(policy_statements_of_role(synth, role_id)) == {
        join_text({"Fn::GetAtt": [function_id, "Arn"]}): {"lambda:InvokeFunction"},
        join_text({"Fn::GetAtt": [dlq_id, "Arn"]}): {"sqs:SendMessage"},
    }
    (trust,) = synth.resources[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert sorted(join_text(arn).rpartition("/")[2] for arn in trust["Condition"]["ArnEquals"]["aws:SourceArn"]) == (
        sorted(s["Name"] for s in schedules))


def test_the_dead_letter_queue_is_encrypted_ssl_only_and_alarmed(synth: Synth) -> None:
    dlq_id = queue_id(synth, NAMES.reconciliation_dlq)
    queue = synth.resources[dlq_id]["Properties"]
    assert queue.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in queue
    assert "FifoQueue" not in queue  # Scheduler takes no FIFO dead-letter queue
    denies = [s for r in synth.of_type("AWS::SQS::QueuePolicy").values() if {"Ref": dlq_id} in r["Properties"]["Queues"]
              for s in r["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


def test_the_settlement_bucket_notifies_the_function_of_each_report_under_its_gateways_prefix(synth: Synth) -> None:
    function_id, _ = _function(synth)
    bucket_id, bucket = _bucket(synth, SETTLEMENT_BUCKET)
    configurations = bucket["Properties"]["NotificationConfiguration"]["LambdaConfigurations"]
    prefixes = set()
    for configuration in configurations:
        assert configuration["Event"] == "s3:ObjectCreated:*"
        assert configuration["Function"] == {"Fn::GetAtt": [function_id, "Arn"]}
        (rule,) = configuration["Filter"]["S3Key"]["Rules"]
        assert rule["Name"] == "prefix"
        prefixes.add(rule["Value"])
    assert prefixes == {"settlements/adyen/", "settlements/sandbox/", "settlements/stripe/"}
    assert len(configurations) == 3
    assert {prefix.split("/")[1] for prefix in prefixes} <= set(GATEWAY_NAMES)
    # S3 may invoke it for this bucket of this account only, and the permission exists before the notification.
    ((permission_id, permission),) = [(logical_id, r)
                                      for logical_id, r in synth.of_type("AWS::Lambda::Permission").items()
                                      if r["Properties"]["Principal"] == "s3.amazonaws.com"]
    props = permission["Properties"]
    assert props["FunctionName"] == {"Fn::GetAtt": [function_id, "Arn"]}
    assert props["Action"] == "lambda:InvokeFunction"
    assert join_text(props["SourceArn"]) == f"arn:{PARTITION}:s3:::{SETTLEMENT_BUCKET}"
    assert props["SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert permission_id in bucket["DependsOn"]
    assert bucket_id


@pytest.mark.parametrize("name", [SETTLEMENT_BUCKET, LANDING_BUCKET])
def test_the_data_buckets_are_private_ssl_only_versioned_kms_encrypted_logged_and_retained(synth: Synth,
                                                                                            name: str) -> None:
    bucket_id, bucket = _bucket(synth, name)
    props = bucket["Properties"]
    assert bucket["DeletionPolicy"] == "Retain" and bucket["UpdateReplacePolicy"] == "Retain"
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "BlockPublicPolicy": True, "IgnorePublicAcls": True, "RestrictPublicBuckets": True}
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    (encryption,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    keys = {alias["Properties"]["AliasName"]: alias["Properties"]["TargetKeyId"]["Fn::GetAtt"][0]
            for alias in synth.of_type("AWS::KMS::Alias").values()}
    assert encryption["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == {
        "Fn::GetAtt": [keys[NAMES.data_key_alias], "Arn"]}
    log_bucket_id, _ = _bucket(synth, ACCESS_LOG_BUCKET)
    assert props["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": log_bucket_id}
    _ssl_only(synth, bucket_id)


def test_settlement_reports_are_kept_for_good(synth: Synth) -> None:
    """Financial records: no lifecycle rule expires a report or an earlier version of one."""
    _, bucket = _bucket(synth, SETTLEMENT_BUCKET)
    for rule in bucket["Properties"]["LifecycleConfiguration"]["Rules"]:
        assert "ExpirationInDays" not in rule and "NoncurrentVersionExpiration" not in rule, rule


def test_the_access_log_bucket_is_private_ssl_only_and_written_by_the_logging_service(synth: Synth) -> None:
    bucket_id, bucket = _bucket(synth, ACCESS_LOG_BUCKET)
    props = bucket["Properties"]
    assert bucket["DeletionPolicy"] == "Retain"
    assert all(props["PublicAccessBlockConfiguration"].values())
    (encryption,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"  # what S3 logging delivers to
    statements = _ssl_only(synth, bucket_id)
    assert any(s["Effect"] == "Allow" and s["Principal"] == {"Service": "logging.s3.amazonaws.com"}
               for s in statements)


def _ssl_only(synth: Synth, bucket_id: str) -> list[dict[str, Any]]:
    (policy,) = [r["Properties"] for r in synth.of_type("AWS::S3::BucketPolicy").values()
                 if r["Properties"]["Bucket"] == {"Ref": bucket_id}]
    statements: list[dict[str, Any]] = policy["PolicyDocument"]["Statement"]
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
               for s in statements)
    return statements


# ---- The ledger's landing ------------------------------------------------------------------------------------------


def test_the_glue_table_has_exactly_the_landing_columns_partitioned_by_date(synth: Synth) -> None:
    _, table = only(synth.of_type("AWS::Glue::Table"))
    props = table["Properties"]
    _, database = only(synth.of_type("AWS::Glue::Database"))
    assert props["DatabaseName"] == database["Properties"]["DatabaseInput"]["Name"] == NAMES.glue_database
    table_input = props["TableInput"]
    assert table_input["Name"] == LANDING_TABLE
    storage = table_input["StorageDescriptor"]
    assert [(c["Name"], c["Type"]) for c in storage["Columns"]] == list(LANDING_COLUMNS)
    assert table_input["PartitionKeys"] == [{"Name": LANDING_PARTITION, "Type": "string"}]
    assert "Parquet" in storage["SerdeInfo"]["SerializationLibrary"]
    assert join_text(storage["Location"]) == f"s3://{LANDING_BUCKET}/{LANDING_PREFIX}"
    # Partition projection: every day is a partition without a crawler.
    parameters = table_input["Parameters"]
    assert parameters["projection.enabled"] == "true"
    assert parameters[f"projection.{LANDING_PARTITION}.format"] == "yyyy-MM-dd"
    assert join_text(parameters["storage.location.template"]) == (
        f"s3://{LANDING_BUCKET}/{LANDING_PREFIX}{LANDING_PARTITION}=${{{LANDING_PARTITION}}}/")


def test_the_landing_stream_converts_json_to_parquet_by_utc_date_encrypted_and_logged(synth: Synth) -> None:
    _, stream = _stream(synth)
    props = stream["Properties"]
    assert props["DeliveryStreamType"] == "DirectPut"
    assert props["DeliveryStreamEncryptionConfigurationInput"]["KeyType"] in {"AWS_OWNED_CMK", "CUSTOMER_MANAGED_CMK"}
    destination = props["ExtendedS3DestinationConfiguration"]
    assert join_text(destination["BucketARN"]) == f"arn:{PARTITION}:s3:::{LANDING_BUCKET}"
    conversion = destination["DataFormatConversionConfiguration"]
    assert conversion["Enabled"] is True
    assert "OpenXJsonSerDe" in conversion["InputFormatConfiguration"]["Deserializer"]
    assert "ParquetSerDe" in conversion["OutputFormatConfiguration"]["Serializer"]
    schema = conversion["SchemaConfiguration"]
    assert (schema["DatabaseName"], schema["TableName"]) == (NAMES.glue_database, LANDING_TABLE)
    # Dynamic partitioning on the entry's UTC date: ledger-entries/dt=YYYY-MM-DD/.
    assert destination["DynamicPartitioningConfiguration"]["Enabled"] is True
    assert destination["Prefix"] == (
        f"{LANDING_PREFIX}{LANDING_PARTITION}=!{{partitionKeyFromQuery:{LANDING_PARTITION}}}/")
    assert destination["Prefix"].startswith("ledger-entries/dt=")
    (processor,) = destination["ProcessingConfiguration"]["Processors"]
    assert processor["Type"] == "MetadataExtraction"
    parameters = {p["ParameterName"]: p["ParameterValue"] for p in processor["Parameters"]}
    assert parameters["MetadataExtractionQuery"] == f"{{{LANDING_PARTITION}: .created_at[0:10]}}"
    assert "created_at" in dict(LANDING_COLUMNS)
    assert destination["ErrorOutputPrefix"].startswith(LANDING_ERRORS_PREFIX)
    assert "!{firehose:error-output-type}" in destination["ErrorOutputPrefix"]
    assert destination["BufferingHints"]["SizeInMBs"] >= 64  # format conversion's minimum
    keys = {alias["Properties"]["AliasName"]: alias["Properties"]["TargetKeyId"]["Fn::GetAtt"][0]
            for alias in synth.of_type("AWS::KMS::Alias").values()}
    assert destination["EncryptionConfiguration"]["KMSEncryptionConfig"]["AWSKMSKeyARN"] == {
        "Fn::GetAtt": [keys[NAMES.data_key_alias], "Arn"]}
    logging = destination["CloudWatchLoggingOptions"]
    assert logging["Enabled"] is True
    group = synth.resources[_ref_or_att(logging["LogGroupName"])]
    assert group["Properties"]["LogGroupName"] == NAMES.ledger_landing_log_group
    assert any(s["Properties"]["LogStreamName"] == logging["LogStreamName"]
               for s in synth.of_type("AWS::Logs::LogStream").values())


def test_the_landing_role_holds_only_what_firehose_needs(synth: Synth) -> None:
    _, stream = _stream(synth)
    destination = stream["Properties"]["ExtendedS3DestinationConfiguration"]
    role_id = destination["RoleARN"]["Fn::GetAtt"][0]
    assert destination["DataFormatConversionConfiguration"]["SchemaConfiguration"]["RoleARN"]["Fn::GetAtt"][0] == (
        role_id)
    statements = policy_statements_of_role(synth, role_id)
    for statement in statements:
        assert not [a for a in actions_of(statement) if "*" in a], statement
        assert "*" not in resources_of(statement), statement
    bucket_arn = f"arn:{PARTITION}:s3:::{LANDING_BUCKET}"
    glue_arn = f"arn:{PARTITION}:glue:{REGION}:{ACCOUNT}"
    by_resource = _by_resource(statements)
    keys = {alias["Properties"]["AliasName"]: alias["Properties"]["TargetKeyId"]["Fn::GetAtt"][0]
            for alias in synth.of_type("AWS::KMS::Alias").values()}
    log_group = synth.resources[_ref_or_att(destination["CloudWatchLoggingOptions"]["LogGroupName"])]
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert by_resource == {
        bucket_arn: set(LANDING_BUCKET_ACTIONS),
        f"{bucket_arn}/{LANDING_PREFIX}*": set(LANDING_OBJECT_ACTIONS),
        f"{bucket_arn}/{LANDING_ERRORS_PREFIX}*": set(LANDING_OBJECT_ACTIONS),
        f"{glue_arn}:catalog": set(LANDING_SCHEMA_ACTIONS),
        f"{glue_arn}:database/{NAMES.glue_database}": set(LANDING_SCHEMA_ACTIONS),
        f"{glue_arn}:table/{NAMES.glue_database}/{LANDING_TABLE}": set(LANDING_SCHEMA_ACTIONS),
        join_text({"Fn::GetAtt": [keys[NAMES.data_key_alias], "Arn"]}): set(LANDING_KEY_ACTIONS),
        join_text({"Fn::GetAtt": [_ref_or_att(destination["CloudWatchLoggingOptions"]["LogGroupName"]), "Arn"]}):
            set(LANDING_LOG_ACTIONS),
    }
    (trust,) = synth.resources[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "firehose.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"sts:ExternalId": {"Ref": "AWS::AccountId"}}}


def test_athena_queries_the_table_in_a_workgroup_with_encrypted_results(synth: Synth) -> None:
    _, workgroup = only(synth.of_type("AWS::Athena::WorkGroup"))
    props = workgroup["Properties"]
    assert props["Name"] == NAMES.athena_workgroup
    configuration = props["WorkGroupConfiguration"]
    assert configuration["EnforceWorkGroupConfiguration"] is True
    results = configuration["ResultConfiguration"]
    assert join_text(results["OutputLocation"]) == f"s3://{LANDING_BUCKET}/{ATHENA_RESULTS_PREFIX}"
    assert results["EncryptionConfiguration"]["EncryptionOption"] == "SSE_KMS"


# ---- The alerts topic, the alarms, the dashboard -----------------------------------------------------------------


def test_the_alerts_topic_is_encrypted_and_ssl_only(synth: Synth) -> None:
    ((topic_id, topic),) = [(logical_id, r) for logical_id, r in synth.of_type("AWS::SNS::Topic").items()
                          if r["Properties"]["TopicName"] == NAMES.recon_alerts_topic]
    keys = {alias["Properties"]["AliasName"]: alias["Properties"]["TargetKeyId"]["Fn::GetAtt"][0]
            for alias in synth.of_type("AWS::KMS::Alias").values()}
    assert topic["Properties"]["KmsMasterKeyId"] == {"Fn::GetAtt": [keys[NAMES.messages_key_alias], "Arn"]}
    denies = [s for r in synth.of_type("AWS::SNS::TopicPolicy").values()
              if {"Ref": topic_id} in r["Properties"]["Topics"]
              for s in r["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in denies)


@pytest.fixture(scope="module")
def alarms(synth: Synth) -> list[AlarmOn]:
    return [_alarm(logical_id, r["Properties"]) for logical_id, r in synth.of_type("AWS::CloudWatch::Alarm").items()]


def test_new_discrepancies_of_any_kind_in_an_hour_raise_an_alarm(alarms: list[AlarmOn]) -> None:
    assert DISCREPANCY_KINDS == LEDGER_DISCREPANCY_KINDS
    (alarm,) = [a for a in alarms if any(m.name == telemetry_names.RECON_DISCREPANCIES_OPENED for m in a.metrics)]
    _never(alarm)
    read = {m.dimensions[telemetry_names.DIMENSION_KIND] for m in alarm.metrics
            if m.namespace == telemetry_names.NAMESPACE and m.name == telemetry_names.RECON_DISCREPANCIES_OPENED
            and set(m.dimensions) == {telemetry_names.DIMENSION_KIND} and m.statistic == "Sum"}
    assert read == set(LEDGER_DISCREPANCY_KINDS) and len(alarm.metrics) == len(read)
    assert all(f"opened{index}" in alarm.expression for index in range(len(read)))
    assert {q["MetricStat"]["Period"] for q in alarm.props["Metrics"] if "MetricStat" in q} == {3_600}


def test_the_function_errors_the_dead_letter_queue_and_failed_conversions_raise_alarms(
        synth: Synth, alarms: list[AlarmOn]) -> None:
    function_id, _ = _function(synth)
    _never(_reading(alarms, "AWS/Lambda", "Errors", FunctionName={"Ref": function_id}))
    dlq = {"Fn::GetAtt": [queue_id(synth, NAMES.reconciliation_dlq), "QueueName"]}
    _never(_reading(alarms, "AWS/SQS", "ApproximateNumberOfMessagesVisible", QueueName=dlq))
    _never(_reading(alarms, "AWS/Firehose", "FailedConversion.Records", DeliveryStreamName=NAMES.ledger_landing_stream))


def test_the_dashboard_has_a_reconciliation_row(synth: Synth) -> None:
    _, resource = only(synth.of_type("AWS::CloudWatch::Dashboard"))
    tokens: list[Any] = []
    text = _flatten(resource["Properties"]["DashboardBody"], tokens)
    body = _restore(json.loads(text.replace("\u0000", "\\u0000")), tokens)
    lines = _metrics(body)
    runtime = [(name, dims) for ns, name, dims, stat in lines if ns == telemetry_names.NAMESPACE and stat == "Sum"]
    assert (telemetry_names.RECON_RUNS, {}) in runtime
    assert {dims[telemetry_names.DIMENSION_KIND] for name, dims in runtime
            if name == telemetry_names.RECON_DISCREPANCIES_OPENED} == set(LEDGER_DISCREPANCY_KINDS)
    assert {dims[telemetry_names.DIMENSION_GATEWAY] for name, dims in runtime
            if name == telemetry_names.SETTLEMENT_LINES_IMPORTED} == set(GATEWAY_NAMES)
