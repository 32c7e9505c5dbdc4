"""ElastiCache Redis for the AuthorizeGateway fence: a primary and a replica in two AZs with automatic failover, TLS in
transit, encrypted at rest, reachable from the functions' security group only."""

from __future__ import annotations

from typing import Final

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticache as elasticache
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra.names import ResourceNames
from infra.network import Network

# Not Redis's default 6379: a scan for open Redis ports inside the VPC finds nothing to try.
REDIS_PORT: Final[int] = 6380
# A primary and one replica, in different AZs: losing a node or an AZ promotes the replica (automatic failover,
# about a minute) instead of failing every AuthorizeGateway until a new node is built.
NODE_COUNT: Final[int] = 2
NODE_TYPE: Final[str] = "cache.t4g.micro"  # the fence keys are a few bytes each


class Cache(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, network: Network, names: ResourceNames) -> None:
        super().__init__(scope, construct_id)
        self.security_group = ec2.SecurityGroup(
            self, "Sg", vpc=network.vpc, description="paysaga Redis", allow_all_outbound=False)
        self.security_group.add_ingress_rule(network.functions_sg, ec2.Port.tcp(REDIS_PORT), "Lambda to Redis")
        subnets = elasticache.CfnSubnetGroup(
            self, "Subnets",
            description="paysaga Redis (isolated data subnets, one per AZ)",
            subnet_ids=network.vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED).subnet_ids,
        )
        # A fence lost in a failover only makes AuthorizeGateway retry (fail transient, see DESIGN.md 6): the gateway
        # idempotency key and payments.version are the other two nets. The replica keeps the fence available.
        self.group = elasticache.CfnReplicationGroup(
            self, "Redis",
            replication_group_id=names.redis,
            replication_group_description="paysaga fences",
            engine="redis",
            engine_version="7.1",
            cache_node_type=NODE_TYPE,
            num_cache_clusters=NODE_COUNT,
            automatic_failover_enabled=True,
            multi_az_enabled=True,
            transit_encryption_enabled=True,
            at_rest_encryption_enabled=True,
            auto_minor_version_upgrade=True,
            port=REDIS_PORT,
            cache_subnet_group_name=subnets.ref,
            security_group_ids=[self.security_group.security_group_id],
        )
        NagSuppressions.add_resource_suppressions(self.group, [NagPackSuppression(
            id="AwsSolutions-AEC6",
            reason="no Redis AUTH: the fence keys hold no data (a payment id with a TTL), TLS is on, and only the "
                   "functions' security group reaches the port inside the VPC; a password would sit in REDIS_URL "
                   "beside the host it protects")])

    @property
    def url(self) -> str:
        """REDIS_URL: TLS (rediss://) to the primary endpoint (it follows a failover)."""
        return f"rediss://{self.group.attr_primary_end_point_address}:{self.group.attr_primary_end_point_port}/0"
