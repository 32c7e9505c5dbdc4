"""The VPC: functions in private subnets with egress (the payment gateways are on the internet), data stores isolated.

- A NAT gateway per AZ: the gateways (Stripe, Adyen) are reached over the internet, and a payment must not depend on
  the NAT of another AZ (one NAT is a single point of failure of the whole payment path).
- VPC endpoints for what the functions call on AWS, so those calls stay off the NAT (no NAT data charge, no internet
  path): DynamoDB (gateway endpoint: the start function's idempotency gate and worker slots), Step Functions (the
  `states` API and the `sync-states` endpoint StartSyncExecution is served by), Secrets Manager (database and gateway
  credentials) and SQS (NotifyMerchant). Interface endpoints with private DNS, reachable from inside the VPC only.
- VPC flow logs of every connection, into an encrypted log group (what was reached, what was refused).
"""

from __future__ import annotations

from typing import Final

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

from infra.log_groups import LogPolicy
from infra.names import ResourceNames

AZ_COUNT: Final[int] = 2
# Interface endpoints: construct id -> the service.
INTERFACE_ENDPOINTS: Final[dict[str, ec2.InterfaceVpcEndpointAwsService]] = {
    "StepFunctions": ec2.InterfaceVpcEndpointAwsService.STEP_FUNCTIONS,
    "StepFunctionsSync": ec2.InterfaceVpcEndpointAwsService.STEP_FUNCTIONS_SYNC,
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Sqs": ec2.InterfaceVpcEndpointAwsService.SQS,
}


class Network(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, names: ResourceNames, log_policy: LogPolicy) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self, "Vpc",
            max_azs=AZ_COUNT,
            nat_gateways=AZ_COUNT,  # one per AZ: egress survives the loss of an AZ
            subnet_configuration=[
                ec2.SubnetConfiguration(name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24),
                ec2.SubnetConfiguration(name="app", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=22),
                ec2.SubnetConfiguration(name="data", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24),
            ],
        )
        self.app_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        self.data_subnets = ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
        self.vpc.add_flow_log(
            "FlowLogs",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                log_policy.log_group(self, "FlowLogsGroup", names.flow_log_group)),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        self.vpc.add_gateway_endpoint("DynamoDb", service=ec2.GatewayVpcEndpointAwsService.DYNAMODB,
                                      subnets=[self.app_subnets])
        # Every function's security group; each function that needs a backend is let in by that backend's group.
        self.functions_sg = ec2.SecurityGroup(
            self, "FunctionsSg", vpc=self.vpc, description="paysaga Lambda functions", allow_all_outbound=True)
        # The interface endpoints take HTTPS from the functions (and whoever else is let in: the secret rotation).
        self.endpoints_sg = ec2.SecurityGroup(
            self, "EndpointsSg", vpc=self.vpc, description="paysaga interface VPC endpoints (HTTPS from functions)",
            allow_all_outbound=False)
        self.endpoints_sg.add_ingress_rule(self.functions_sg, ec2.Port.tcp(443), "HTTPS from the functions")
        self.endpoints = {
            endpoint_id: self.vpc.add_interface_endpoint(
                endpoint_id, service=service, subnets=self.app_subnets, private_dns_enabled=True,
                security_groups=[self.endpoints_sg], open=False)
            for endpoint_id, service in INTERFACE_ENDPOINTS.items()
        }
