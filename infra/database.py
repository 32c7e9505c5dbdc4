"""Aurora PostgreSQL Serverless v2 behind an RDS Proxy; credentials are the cluster's generated secret."""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_rds as rds
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.network import Network

DATABASE_NAME: Final[str] = "paysaga"
DATABASE_USER: Final[str] = "paysaga"
POSTGRES_PORT: Final[int] = 5432


class Database(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, network: Network, min_acu: float,
                 max_acu: float) -> None:
        super().__init__(scope, construct_id)
        self.cluster = rds.DatabaseCluster(
            self, "Cluster",
            engine=rds.DatabaseClusterEngine.aurora_postgres(version=rds.AuroraPostgresEngineVersion.VER_16_13),
            credentials=rds.Credentials.from_generated_secret(DATABASE_USER),
            default_database_name=DATABASE_NAME,
            writer=rds.ClusterInstance.serverless_v2("Writer"),
            readers=[rds.ClusterInstance.serverless_v2("Reader", scale_with_writer=True)],
            serverless_v2_min_capacity=min_acu,
            serverless_v2_max_capacity=max_acu,
            vpc=network.vpc,
            vpc_subnets=network.data_subnets,
            storage_encrypted=True,
            backup=rds.BackupProps(retention=Duration.days(14)),
            deletion_protection=True,
            removal_policy=RemovalPolicy.SNAPSHOT,  # the ledger is the book of record
        )
        secret = self.cluster.secret
        assert secret is not None, "from_generated_secret always makes one"
        self.secret: secretsmanager.ISecret = secret
        self.proxy = rds.DatabaseProxy(
            self, "Proxy",
            proxy_target=rds.ProxyTarget.from_cluster(self.cluster),
            secrets=[secret],
            vpc=network.vpc,
            vpc_subnets=network.data_subnets,
            require_tls=True,
            # Bounded: a burst of Lambda containers queues at the proxy instead of exhausting the database.
            max_connections_percent=90,
            borrow_timeout=Duration.seconds(10),
        )
        self.cluster.connections.allow_default_port_from(self.proxy, "RDS Proxy to Aurora")
        self.proxy.connections.allow_from(network.functions_sg, ec2.Port.tcp(POSTGRES_PORT), "Lambda to RDS Proxy")

    @property
    def url_without_password(self) -> str:
        """DATABASE_URL: the proxy endpoint and user; the password is read from `secret` at cold start."""
        return (f"postgresql://{DATABASE_USER}@{self.proxy.endpoint}:{POSTGRES_PORT}/{DATABASE_NAME}"
                "?sslmode=require")
