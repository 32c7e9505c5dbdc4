"""Aurora behind RDS Proxy with one login per purpose, each secret rotated; Redis with a replica and failover."""

from __future__ import annotations

import json
from typing import Any

from core import limits
from core.database_roles import FUNCTIONS_USER, OWNER_ROLE
from infra.database import MASTER_USER
from infra.environment import DATABASE_PROXY
from tests.unit.infra.support import (
    MERCHANT_ADMIN,
    MIGRATIONS,
    NAMES,
    START,
    Synth,
    actions_of,
    functions_by_name,
    join_text,
    only,
    resources_of,
    statements_of_function,
)


def _secrets_by_user(synth: Synth) -> dict[str, tuple[str, dict[str, Any]]]:
    """Database user -> (logical id of its secret's cluster attachment, the secret's properties)."""
    attachments = {a["Properties"]["SecretId"]["Ref"]: attachment_id
                   for attachment_id, a in synth.of_type("AWS::SecretsManager::SecretTargetAttachment").items()}
    found = {}
    for secret_id, secret in synth.of_type("AWS::SecretsManager::Secret").items():
        generate = secret["Properties"].get("GenerateSecretString", {})
        user = json.loads(generate.get("SecretStringTemplate", "{}")).get("username")
        if user is not None:
            found[user] = (attachments[secret_id], secret["Properties"])
    return found


def test_aurora_serverless_v2_encrypted_with_iam_auth_backups_and_exported_logs(synth: Synth) -> None:
    _, cluster = only(synth.of_type("AWS::RDS::DBCluster"))
    props = cluster["Properties"]
    assert props["Engine"] == "aurora-postgresql"
    assert props["DBClusterIdentifier"] == NAMES.database_cluster
    assert props["StorageEncrypted"] is True
    assert props["DeletionProtection"] is True and cluster["DeletionPolicy"] == "Snapshot"
    assert props["BackupRetentionPeriod"] == 35
    assert props["ServerlessV2ScalingConfiguration"]["MinCapacity"] >= 0.5
    assert props["EnableCloudwatchLogsExports"] == ["postgresql"]
    assert props["EnableIAMDatabaseAuthentication"] is True
    instances = synth.of_type("AWS::RDS::DBInstance").values()
    assert len(instances) == 2 and all(i["Properties"]["DBInstanceClass"] == "db.serverless" for i in instances)
    log_groups = {g["Properties"]["LogGroupName"] for g in synth.of_type("AWS::Logs::LogGroup").values()}
    assert f"/aws/rds/cluster/{NAMES.database_cluster}/postgresql" in log_groups


def test_the_proxy_requires_tls_and_sets_the_statement_timeout_with_its_init_query(synth: Synth) -> None:
    _, proxy = only(synth.of_type("AWS::RDS::DBProxy"))
    assert proxy["Properties"]["RequireTLS"] is True
    assert proxy["Properties"]["EngineFamily"] == "POSTGRESQL"
    assert proxy["Properties"]["DBProxyName"] == NAMES.database_proxy
    _, target_group = only(synth.of_type("AWS::RDS::DBProxyTargetGroup"))
    pool = target_group["Properties"]["ConnectionPoolConfigurationInfo"]
    assert pool["InitQuery"] == f"SET statement_timeout = {limits.DB_STATEMENT_TIMEOUT_MS}"
    assert pool["ConnectionBorrowTimeout"] == limits.DB_POOL_TIMEOUT_S


def test_one_secret_per_login_each_registered_with_the_proxy_with_password_auth(synth: Synth) -> None:
    secrets = _secrets_by_user(synth)
    assert set(secrets) >= {MASTER_USER, OWNER_ROLE, FUNCTIONS_USER}
    names = {user: props["Name"] for user, (_, props) in secrets.items()}
    assert names[MASTER_USER] == NAMES.database_secret("master")
    assert names[OWNER_ROLE] == NAMES.database_secret("owner")
    assert names[FUNCTIONS_USER] == NAMES.database_secret("functions")
    _, proxy = only(synth.of_type("AWS::RDS::DBProxy"))
    auth = proxy["Properties"]["Auth"]
    assert {a["SecretArn"]["Ref"] for a in auth} == {secrets[u][0] for u in (MASTER_USER, OWNER_ROLE, FUNCTIONS_USER)}
    assert all(a["IAMAuth"] == "DISABLED" and a["ClientPasswordAuthType"] == "POSTGRES_SCRAM_SHA_256" for a in auth)


def test_every_database_secret_is_rotated_single_user_in_the_vpc_after_the_migrations(synth: Synth) -> None:
    secrets = _secrets_by_user(synth)
    (schema_id,) = [k for k, r in synth.resources.items() if r["Type"] == "Custom::PaysagaDatabaseSchema"]
    rotated = {}
    for schedule in synth.of_type("AWS::SecretsManager::RotationSchedule").values():
        props = schedule["Properties"]
        hosted = props["HostedRotationLambda"]
        assert hosted["RotationType"] == "PostgreSQLSingleUser"
        assert hosted["VpcSubnetIds"] and hosted["VpcSecurityGroupIds"]
        assert hosted["RotationLambdaName"].startswith(f"{NAMES.prefix}-")
        assert props["RotationRules"]["ScheduleExpression"] == "rate(30 days)"
        assert schema_id in schedule["DependsOn"], "the roles must exist before their passwords rotate"
        rotated[props["SecretId"]["Ref"]] = hosted["RotationLambdaName"]
    assert set(rotated) == {secrets[u][0] for u in (MASTER_USER, OWNER_ROLE, FUNCTIONS_USER)}
    assert "AWS::SecretsManager-2024-09-16" in synth.data["Transform"]


def test_functions_connect_as_their_own_user_through_the_proxy_with_verified_tls(synth: Synth) -> None:
    proxy_id, _ = only(synth.of_type("AWS::RDS::DBProxy"))
    functions_secret = {"Ref": _secrets_by_user(synth)[FUNCTIONS_USER][0]}
    for name, (_, props) in functions_by_name(synth).items():
        variables = props["Environment"]["Variables"]
        url = join_text(variables["DATABASE_URL"])
        assert url.startswith(f"postgresql://{FUNCTIONS_USER}@"), name
        assert json.dumps({"Fn::GetAtt": [proxy_id, "Endpoint"]}, sort_keys=True) in url
        assert url.endswith(":5432/paysaga?sslmode=verify-full"), name
        assert variables[DATABASE_PROXY] == "true", name
        assert "resolve:secretsmanager" not in json.dumps(variables)
        assert variables["DATABASE_SECRET_ARN"] == functions_secret, name


def test_only_the_migration_function_knows_and_reads_the_master_and_owner_secrets(synth: Synth) -> None:
    secrets = _secrets_by_user(synth)
    master, owner, functions = ({"Ref": secrets[u][0]} for u in (MASTER_USER, OWNER_ROLE, FUNCTIONS_USER))
    (gateway_secret,) = [k for k in synth.of_type("AWS::SecretsManager::Secret") if k.startswith("GatewaysSecret")]
    for name, (_, props) in functions_by_name(synth).items():
        variables = props["Environment"]["Variables"]
        readable = [r for s in statements_of_function(synth, props) if "secretsmanager:GetSecretValue" in actions_of(s)
                    for r in resources_of(s)]
        if name == MIGRATIONS:
            assert variables["DATABASE_MASTER_SECRET_ARN"] == master
            assert variables["DATABASE_OWNER_SECRET_ARN"] == owner
            assert sorted(map(json.dumps, readable)) == sorted(map(json.dumps, [master, owner, functions]))
            continue
        assert "DATABASE_MASTER_SECRET_ARN" not in variables and "DATABASE_OWNER_SECRET_ARN" not in variables, name
        expected = [functions]
        if "GATEWAY_SECRETS_ARN" in variables:
            expected.append({"Ref": gateway_secret})
        assert sorted(map(json.dumps, readable)) == sorted(map(json.dumps, expected)), name
    assert MERCHANT_ADMIN in functions_by_name(synth)


def test_redis_has_a_replica_in_another_az_with_automatic_failover_and_tls(synth: Synth) -> None:
    group_id, group = only(synth.of_type("AWS::ElastiCache::ReplicationGroup"))
    props = group["Properties"]
    assert props["Engine"] == "redis"
    assert props["ReplicationGroupId"] == NAMES.redis
    assert props["NumCacheClusters"] == 2
    assert props["AutomaticFailoverEnabled"] is True and props["MultiAZEnabled"] is True
    assert props["TransitEncryptionEnabled"] is True
    assert props["AtRestEncryptionEnabled"] is True
    _, subnets = only(synth.of_type("AWS::ElastiCache::SubnetGroup"))
    assert len(subnets["Properties"]["SubnetIds"]) == 2, "one subnet per AZ"
    url = join_text(functions_by_name(synth)[START][1]["Environment"]["Variables"]["REDIS_URL"])
    assert url.startswith("rediss://")
    assert json.dumps({"Fn::GetAtt": [group_id, "PrimaryEndPoint.Address"]}, sort_keys=True) in url
