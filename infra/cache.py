"""ElastiCache Redis for the AuthorizeGateway fence: one small node, TLS in transit, only the functions reach it."""

from __future__ import annotations

from typing import Final

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from constructs import Construct

from infra.network import Network

REDIS_PORT: Final[int] = 6379


class Cache(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, network: Network) -> None:
        super().__init__(scope, construct_id)
        self.security_group = ec2.SecurityGroup(
            self, "Sg", vpc=network.vpc, description="paysaga Redis", allow_all_outbound=False)
        self.security_group.add_ingress_rule(network.functions_sg, ec2.Port.tcp(REDIS_PORT), "Lambda to Redis")
        subnets = elasticache.CfnSubnetGroup(
            self, "Subnets",
            description="paysaga Redis (isolated data subnets)",
            subnet_ids=network.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED).subnet_ids,
        )
        # A fence lost with a node failure only makes AuthorizeGateway retry (fail transient, see DESIGN.md 6):
        # the gateway idempotency key and payments.version are the other two nets, so one node is enough.
        self.group = elasticache.CfnReplicationGroup(
            self, "Redis",
            replication_group_description="paysaga fences",
            engine="redis",
            engine_version="7.1",
            cache_node_type="cache.t4g.micro",
            num_cache_clusters=1,
            automatic_failover_enabled=False,
            transit_encryption_enabled=True,
            at_rest_encryption_enabled=True,
            port=REDIS_PORT,
            cache_subnet_group_name=subnets.ref,
            security_group_ids=[self.security_group.security_group_id],
        )

    @property
    def url(self) -> str:
        """REDIS_URL: TLS (rediss://) to the primary endpoint."""
        return f"rediss://{self.group.attr_primary_end_point_address}:{self.group.attr_primary_end_point_port}/0"
