"""Aurora PostgreSQL Serverless v2 behind an RDS Proxy, with one login per purpose (core/database_roles.py):

- the master user (the cluster's generated secret): used by the migration custom resource only, to create the roles;
- paysaga_owner (its own secret): owns the schema; the migrations run as it;
- paysaga_functions (its own secret, DATABASE_SECRET_ARN of every function): a member of the NOLOGIN role
  paysaga_app, which the migrations grant DML on what the functions need, nothing else.

All three are registered with the proxy (the migration function connects through it like every function: one TLS
endpoint, one certificate chain). Each secret is rotated by Secrets Manager's hosted rotation function for PostgreSQL,
single-user (the user changes its own password):
- paysaga_functions: DATABASE_URL names the user, and RDS Proxy authenticates a client against the secret it holds
  for that user name; multi-user rotation alternates between two user names (`..._clone`), which the URL and the
  proxy's registration would not follow. core/db.py's secret cache re-reads the password, so the short window in
  which a cached old password fails ends with the next read.
- paysaga_owner: the migrations must run as the owner of the objects; a clone user would own nothing.
- master: AWS's own recommendation for the master user (single-user; nothing connects with it at run time).
Hosted rotation (AWS::SecretsManager::RotationSchedule's HostedRotationLambda) is built by CloudFormation's
SecretsManager transform at deploy time: no Docker and no bundling at synth.

RDS Proxy IAM authentication is off: the functions authenticate with their own password, read from Secrets Manager
through a refreshing cache (core/db.py), the same path locally and on AWS. IAM auth would need core/db.py to sign a
token for every new connection (15-minute tokens, a Secrets Manager call replaced by an RDS signer call), and it
would not remove the secrets: the proxy still logs in to Aurora with them. IAM database authentication is enabled on
the cluster itself, for engineers' break-glass sessions with short-lived tokens instead of a shared password.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from core import limits
from core.database_roles import FUNCTIONS_USER, OWNER_ROLE
from infra.log_groups import LogPolicy
from infra.names import ResourceNames
from infra.network import Network

DATABASE_NAME: Final[str] = "paysaga"
MASTER_USER: Final[str] = "paysaga_master"
POSTGRES_PORT: Final[int] = 5432
# Every proxy connection starts with this (RDS Proxy refuses startup `options`, so the statement timeout cannot come
# from the client): no statement of ours holds locks longer than core/limits.py says.
INIT_QUERY: Final[str] = f"SET statement_timeout = {limits.DB_STATEMENT_TIMEOUT_MS}"
# The secrets, by the name infra/names.py gives them: user -> database user name.
SECRET_USERS: Final[dict[str, str]] = {"master": MASTER_USER, "owner": OWNER_ROLE, "functions": FUNCTIONS_USER}
# Cluster parameters: TLS required for direct connections too (the rotation functions), and every DDL statement in
# the PostgreSQL log (an audit trail of schema changes).
CLUSTER_PARAMETERS: Final[dict[str, str]] = {"rds.force_ssl": "1", "log_statement": "ddl"}
CFN_LINT_STALE_ENGINE_VERSIONS: Final[str] = "E3690"


class Database(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, network: Network, names: ResourceNames,
                 log_policy: LogPolicy, min_acu: float, max_acu: float, backup_retention_days: int,
                 rotation_days: int) -> None:
        super().__init__(scope, construct_id)
        master = rds.DatabaseSecret(self, "MasterSecret", username=MASTER_USER,
                                    secret_name=names.database_secret("master"))
        # Made before the cluster, so RDS exports into an encrypted, retained log group rather than one it makes.
        log_group = log_policy.log_group(self, "PostgresLogs", names.database_log_group)
        self.cluster = rds.DatabaseCluster(
            self, "Cluster",
            cluster_identifier=names.database_cluster,
            engine=rds.DatabaseClusterEngine.aurora_postgres(version=rds.AuroraPostgresEngineVersion.VER_16_13),
            credentials=rds.Credentials.from_secret(master),
            default_database_name=DATABASE_NAME,
            writer=rds.ClusterInstance.serverless_v2("Writer"),
            readers=[rds.ClusterInstance.serverless_v2("Reader", scale_with_writer=True)],
            serverless_v2_min_capacity=min_acu,
            serverless_v2_max_capacity=max_acu,
            parameters=CLUSTER_PARAMETERS,
            vpc=network.vpc,
            vpc_subnets=network.data_subnets,
            storage_encrypted=True,
            iam_authentication=True,
            cloudwatch_logs_exports=["postgresql"],
            backup=rds.BackupProps(retention=Duration.days(backup_retention_days)),
            deletion_protection=True,
            removal_policy=RemovalPolicy.SNAPSHOT,  # the ledger is the book of record
        )
        self.cluster.node.add_dependency(log_group)
        # cfn-lint's list of Aurora PostgreSQL versions lags RDS's releases (1.58 knows 16.9 as the newest 16.x);
        # aws-cdk-lib's follows them: only this check, only on this resource.
        cfn_cluster = self.cluster.node.default_child
        assert isinstance(cfn_cluster, rds.CfnDBCluster)
        cfn_cluster.add_metadata("cfn-lint", {"config": {"ignore_checks": [CFN_LINT_STALE_ENGINE_VERSIONS]}})
        attached_master = self.cluster.secret
        assert attached_master is not None, "Credentials.from_secret attaches the secret to the cluster"
        # Secrets with the cluster's host, port and database attached (the rotation functions connect with them).
        self.secrets: dict[str, secretsmanager.ISecret] = {"master": attached_master}
        for user in ("owner", "functions"):
            secret = rds.DatabaseSecret(self, f"{user.capitalize()}Secret", username=SECRET_USERS[user],
                                        secret_name=names.database_secret(user))
            self.secrets[user] = secret.attach(self.cluster)

        self.proxy = rds.DatabaseProxy(
            self, "Proxy",
            db_proxy_name=names.database_proxy,
            proxy_target=rds.ProxyTarget.from_cluster(self.cluster),
            secrets=list(self.secrets.values()),
            vpc=network.vpc,
            vpc_subnets=network.data_subnets,
            require_tls=True,
            iam_auth=False,  # see the module docstring
            client_password_auth_type=rds.ClientPasswordAuthType.POSTGRES_SCRAM_SHA_256,
            init_query=INIT_QUERY,
            # Bounded: a burst of Lambda containers queues at the proxy instead of exhausting the database.
            max_connections_percent=90,
            borrow_timeout=Duration.seconds(limits.DB_POOL_TIMEOUT_S),
        )
        self.cluster.connections.allow_default_port_from(self.proxy, "RDS Proxy to Aurora")
        self.proxy.connections.allow_from(network.functions_sg, ec2.Port.tcp(POSTGRES_PORT), "Lambda to RDS Proxy")

        # The hosted rotation functions connect to the cluster itself (the host in the secret) and to Secrets
        # Manager (its VPC endpoint).
        self.rotation_sg = ec2.SecurityGroup(
            self, "RotationSg", vpc=network.vpc, description="paysaga database secret rotation functions",
            allow_all_outbound=True)
        self.cluster.connections.allow_default_port_from(self.rotation_sg, "secret rotation to Aurora")
        network.endpoints_sg.add_ingress_rule(self.rotation_sg, ec2.Port.tcp(443), "HTTPS from the secret rotation")
        self.rotations: list[secretsmanager.RotationSchedule] = [
            secret.add_rotation_schedule(
                f"{user.capitalize()}Rotation",
                automatically_after=Duration.days(rotation_days),
                hosted_rotation=secretsmanager.HostedRotation.postgre_sql_single_user(
                    function_name=names.rotation_function(user),
                    vpc=network.vpc, vpc_subnets=network.app_subnets, security_groups=[self.rotation_sg]),
            )
            for user, secret in self.secrets.items()
        ]

    @property
    def functions_secret(self) -> secretsmanager.ISecret:
        return self.secrets["functions"]

    @property
    def url_without_password(self) -> str:
        """DATABASE_URL: the proxy endpoint and the functions' user, TLS with the server's name and chain verified
        (core/db.py gives psycopg certifi's root bundle: the proxy's certificate is issued by Amazon's public CA);
        the password is read from DATABASE_SECRET_ARN."""
        return (f"postgresql://{FUNCTIONS_USER}@{self.proxy.endpoint}:{POSTGRES_PORT}/{DATABASE_NAME}"
                "?sslmode=verify-full")
