"""Tables, queues, topic, bus, database and cache: the shapes core/aws_resources.py provisions locally."""

from __future__ import annotations

import json
from typing import Any

from tests.unit.infra.support import (
    START,
    Synth,
    actions_of,
    functions_by_name,
    join_text,
    only,
    policy_statements_of_role,
    settings_default,
)


def _by_name(synth: Synth, cfn_type: str, name_property: str) -> dict[str, tuple[str, dict[str, Any]]]:
    return {r["Properties"][name_property]: (logical_id, r) for logical_id, r in synth.of_type(cfn_type).items()}


def test_dynamodb_tables_have_the_local_keys_ttl_on_demand_and_pitr(synth: Synth) -> None:
    tables = _by_name(synth, "AWS::DynamoDB::Table", "TableName")
    expected = {settings_default("idempotency_table"): ("pk", "expires_at"),
                settings_default("worker_slots_table"): ("slot", None)}
    assert set(tables) == set(expected)
    for name, (hash_key, ttl) in expected.items():
        props = tables[name][1]["Properties"]
        assert props["KeySchema"] == [{"AttributeName": hash_key, "KeyType": "HASH"}]
        assert props["AttributeDefinitions"] == [{"AttributeName": hash_key, "AttributeType": "S"}]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        if ttl is None:
            assert "TimeToLiveSpecification" not in props
        else:
            assert props["TimeToLiveSpecification"] == {"AttributeName": ttl, "Enabled": True}


def test_functions_are_told_the_deployed_table_names(synth: Synth) -> None:
    tables = _by_name(synth, "AWS::DynamoDB::Table", "TableName")
    variables = functions_by_name(synth)[START][1]["Environment"]["Variables"]
    assert variables["IDEMPOTENCY_TABLE"] == {"Ref": tables[settings_default("idempotency_table")][0]}
    assert variables["WORKER_SLOTS_TABLE"] == {"Ref": tables[settings_default("worker_slots_table")][0]}


def test_fifo_queue_redrives_to_a_fifo_dlq(synth: Synth) -> None:
    queues = _by_name(synth, "AWS::SQS::Queue", "QueueName")
    queue_name, dlq_name = settings_default("notifications_queue"), settings_default("notifications_dlq")
    assert set(queues) == {queue_name, dlq_name}
    queue, dlq = queues[queue_name][1]["Properties"], queues[dlq_name][1]
    assert queue["FifoQueue"] is True and dlq["Properties"]["FifoQueue"] is True
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": [queues[dlq_name][0], "Arn"]},
                                      "maxReceiveCount": 5}
    variables = functions_by_name(synth)[START][1]["Environment"]["Variables"]
    assert variables["NOTIFICATIONS_QUEUE"] == {"Fn::GetAtt": [queues[queue_name][0], "QueueName"]}
    assert variables["NOTIFICATIONS_DLQ"] == {"Fn::GetAtt": [queues[dlq_name][0], "QueueName"]}


def test_topic_and_bus_carry_the_settings_names(synth: Synth) -> None:
    topics = _by_name(synth, "AWS::SNS::Topic", "TopicName")
    assert settings_default("notifications_topic") in topics
    _, bus = only(synth.of_type("AWS::Events::EventBus"))
    assert bus["Properties"]["Name"] == settings_default("event_bus")


def test_aurora_serverless_v2_behind_a_tls_proxy(synth: Synth) -> None:
    _, cluster = only(synth.of_type("AWS::RDS::DBCluster"))
    props = cluster["Properties"]
    assert props["Engine"] == "aurora-postgresql"
    assert props["StorageEncrypted"] is True
    assert props["ServerlessV2ScalingConfiguration"]["MinCapacity"] >= 0.5
    instances = synth.of_type("AWS::RDS::DBInstance").values()
    assert instances and all(i["Properties"]["DBInstanceClass"] == "db.serverless" for i in instances)
    _, proxy = only(synth.of_type("AWS::RDS::DBProxy"))
    assert proxy["Properties"]["RequireTLS"] is True
    assert proxy["Properties"]["EngineFamily"] == "POSTGRESQL"


def _database_secret_refs(synth: Synth) -> list[dict[str, str]]:
    """The generated secret, by itself or through its cluster attachment (whose Ref is the same secret's ARN)."""
    secret_id, _ = only({k: v for k, v in synth.of_type("AWS::SecretsManager::Secret").items()
                         if k.startswith("PaysagaDatabase")})
    attachment_id, attachment = only(synth.of_type("AWS::SecretsManager::SecretTargetAttachment"))
    assert attachment["Properties"]["SecretId"] == {"Ref": secret_id}
    return [{"Ref": secret_id}, {"Ref": attachment_id}]


def test_database_url_names_the_proxy_and_no_password(synth: Synth) -> None:
    proxy_id, _ = only(synth.of_type("AWS::RDS::DBProxy"))
    for name, (_, props) in functions_by_name(synth).items():
        variables = props["Environment"]["Variables"]
        url = join_text(variables["DATABASE_URL"])
        assert url.startswith("postgresql://paysaga@"), name
        assert json.dumps({"Fn::GetAtt": [proxy_id, "Endpoint"]}, sort_keys=True) in url
        assert url.endswith("?sslmode=require")
        assert "resolve:secretsmanager" not in json.dumps(variables)
        assert variables["DATABASE_SECRET_ARN"] in _database_secret_refs(synth)


def test_every_function_may_read_the_database_secret_and_only_gateway_users_the_gateway_secret(synth: Synth) -> None:
    secret_refs = _database_secret_refs(synth)
    (gateway_secret,) = [k for k in synth.of_type("AWS::SecretsManager::Secret") if k.startswith("GatewaysSecret")]
    for name, (_, props) in functions_by_name(synth).items():
        statements = policy_statements_of_role(synth, props["Role"]["Fn::GetAtt"][0])
        reads = [s for s in statements if "secretsmanager:GetSecretValue" in actions_of(s)]
        assert any(s["Resource"] in secret_refs for s in reads), f"{name} cannot read the database secret"
        allowed = [*secret_refs]
        if "GATEWAY_SECRETS_ARN" in props["Environment"]["Variables"]:
            allowed.append({"Ref": gateway_secret})
            assert any(s["Resource"] == {"Ref": gateway_secret} for s in reads), f"{name} cannot read its gateway keys"
        assert all(s["Resource"] in allowed for s in reads), name


def test_redis_is_one_small_tls_node_in_the_vpc(synth: Synth) -> None:
    group_id, group = only(synth.of_type("AWS::ElastiCache::ReplicationGroup"))
    props = group["Properties"]
    assert props["Engine"] == "redis"
    assert props["NumCacheClusters"] == 1
    assert props["TransitEncryptionEnabled"] is True
    assert props["AtRestEncryptionEnabled"] is True
    url = join_text(functions_by_name(synth)[START][1]["Environment"]["Variables"]["REDIS_URL"])
    assert url.startswith("rediss://")
    assert json.dumps({"Fn::GetAtt": [group_id, "PrimaryEndPoint.Address"]}, sort_keys=True) in url


def test_only_notify_merchant_may_send_to_the_notifications_queue(synth: Synth) -> None:
    queues = {r["Properties"]["QueueName"]: logical_id for logical_id, r in synth.of_type("AWS::SQS::Queue").items()}
    queue_arn = {"Fn::GetAtt": [queues[settings_default("notifications_queue")], "Arn"]}
    senders = set()
    for name, (_, props) in functions_by_name(synth).items():
        statements = policy_statements_of_role(synth, props["Role"]["Fn::GetAtt"][0])
        if any("sqs:SendMessage" in actions_of(s) and s["Resource"] == queue_arn for s in statements):
            senders.add(name)
    assert senders == {"paysaga-NotifyMerchant"}
