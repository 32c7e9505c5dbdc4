"""The Lambda functions: one per entry of steps.registry.HANDLERS (the payment saga's steps and the operations'),
plus the start function behind the API.

Every function is made by `make_function`: arm64 and the newest Python runtime (infra/code_asset.py), in the VPC,
active tracing, its own encrypted log group (infra/log_groups.py) and its own role, which holds nothing but writing
to that log group, the ENI actions Lambda needs in a VPC (one managed policy for all) and X-Ray; every other
permission is an explicit statement the stack adds for exactly the calls the function's code makes
(infra/permissions.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from aws_cdk import Duration
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from core import limits, telemetry_names
from infra.code_asset import ARCHITECTURE, RUNTIME
from infra.log_groups import LogPolicy
from infra.names import ResourceNames
from infra.network import Network
from steps import registry

# Every limit below is core/limits.py's, where its relations are asserted (tests/unit/infra/test_limits.py checks the
# synthesized template against them).
# A step does one bounded thing (gateway calls time out at GATEWAY_TIMEOUT_MS); Step Functions retries transients.
STEP_TIMEOUT: Final[Duration] = Duration.seconds(limits.STEP_LAMBDA_TIMEOUT_S)
# Above the state machine's TimeoutSeconds: StartSyncExecution must return before the start function is cut off.
START_TIMEOUT_S: Final[int] = limits.START_FUNCTION_TIMEOUT_S
START_HANDLER: Final[str] = "saga.handler.handler"
# An Idempotency-Key stays IN_PROGRESS longer than its holder can live, so a live holder is never overtaken.
IN_PROGRESS_TTL_MS: Final[int] = limits.IDEMPOTENCY_IN_PROGRESS_TTL_MS
# One execution per payment at a time: the lease outlives any execution and the start function that holds it, and
# ends before the key's hold does.
EXECUTION_LEASE_MS: Final[int] = limits.EXECUTION_LEASE_MS
# A start that meets a running execution of its payment waits this long, within API Gateway's 29 s, then answers 409.
LEASE_WAIT_MS: Final[int] = limits.LEASE_WAIT_MS
# The start answers within this (202 + Location past it), under API Gateway's integration timeout.
START_ANSWER_BUDGET_MS: Final[int] = limits.START_ANSWER_BUDGET_MS
# Memory (and so CPU: Lambda gives CPU in proportion): the start function waits on the saga and serializes answers;
# a step does one I/O-bound thing.
START_MEMORY_MB: Final[int] = 1_024
STEP_MEMORY_MB: Final[int] = 512
# The ENI actions Lambda performs with a function's role to attach it to the VPC (AWS's AWSLambdaENIManagementAccess,
# written out). EC2 grants the Describe actions on "*" only.
VPC_ACCESS_ACTIONS: Final[tuple[str, ...]] = (
    "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
    "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses",
)
# What X-Ray's active tracing adds to every role (CDK's own statement): X-Ray grants these on "*" only.
XRAY_ACTIONS: Final[tuple[str, ...]] = ("xray:PutTraceSegments", "xray:PutTelemetryRecords")
POWERTOOLS_SERVICE_NAME: Final[str] = "POWERTOOLS_SERVICE_NAME"


def lambda_handler(target: str) -> str:
    """'steps.validate:handler' (registry form) -> 'steps.validate.handler' (Lambda's form)."""
    module, sep, function = target.partition(":")
    if not sep or not module or not function:
        raise ValueError(f"registry handler {target!r} is not 'module:function'")
    return f"{module}.{function}"


def vpc_access_policy(scope: Construct, construct_id: str) -> iam.ManagedPolicy:
    """The one policy every function's role carries to run in the VPC."""
    policy = iam.ManagedPolicy(
        scope, construct_id,
        description="paysaga Lambda functions: the ENI actions Lambda takes to attach a function to the VPC",
        statements=[iam.PolicyStatement(actions=list(VPC_ACCESS_ACTIONS), resources=["*"])],
    )
    NagSuppressions.add_resource_suppressions(policy, [NagPackSuppression(
        id="AwsSolutions-IAM5", applies_to=["Resource::*"],
        reason="Lambda's VPC ENI actions: EC2 grants ec2:Describe* on '*' only, and Lambda creates and deletes the "
               "ENIs in subnets it chooses; the same actions as AWS's AWSLambdaENIManagementAccess, nothing more")])
    return policy


@dataclass(frozen=True)
class FunctionBase:
    """What every function shares."""

    code: lambda_.Code
    environment: Mapping[str, str]
    network: Network
    layers: Sequence[lambda_.ILayerVersion]
    log_policy: LogPolicy
    vpc_access: iam.IManagedPolicy
    names: ResourceNames


def make_function(scope: Construct, construct_id: str, base: FunctionBase, *, name: str, handler: str,
                  timeout: Duration, memory_mb: int, reserved_concurrency: int, service: str,
                  code: lambda_.Code | None = None, security_groups: Sequence[ec2.ISecurityGroup] = (),
                  environment: Mapping[str, str] | None = None, description: str = "",
                  dead_letter_queue: sqs.IQueue | None = None) -> lambda_.Function:
    log_group = base.log_policy.log_group(scope, f"{construct_id}Logs", base.names.function_log_group(name))
    role = iam.Role(
        scope, f"{construct_id}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
        description=f"{name}: its log group, the VPC, X-Ray, and the calls its code makes",
        managed_policies=[base.vpc_access],
    )
    role.add_to_policy(iam.PolicyStatement(actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                                           resources=[log_group.log_group_arn]))
    function = lambda_.Function(
        scope, construct_id,
        function_name=name,
        description=description or None,
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        handler=handler,
        code=code or base.code,
        layers=list(base.layers),
        environment={**base.environment, POWERTOOLS_SERVICE_NAME: service, **(environment or {})},
        timeout=timeout,
        memory_size=memory_mb,
        reserved_concurrent_executions=reserved_concurrency,
        vpc=base.network.vpc,
        vpc_subnets=base.network.app_subnets,
        security_groups=list(security_groups) or [base.network.functions_sg],
        tracing=lambda_.Tracing.ACTIVE,
        log_group=log_group,
        role=role,
        # Where Lambda puts an asynchronous invocation that failed its retries (CDK adds sqs:SendMessage on it).
        dead_letter_queue=dead_letter_queue,
    )
    NagSuppressions.add_resource_suppressions(role, [NagPackSuppression(
        id="AwsSolutions-IAM5", applies_to=["Resource::*"],
        reason="X-Ray active tracing (CDK's own statement: xray:PutTraceSegments, xray:PutTelemetryRecords): X-Ray "
               "grants them on '*' only; tests/unit/infra/test_permissions.py allows '*' for nothing else")],
        apply_to_children=True)
    return function


def registry_step(step: str) -> registry.Step:
    """A registry entry of any workflow: the payment saga's (registry.STEPS) or an operation's
    (registry.OPERATION_STEPS)."""
    found = registry.STEPS.get(step) or registry.OPERATION_STEPS.get(step)
    if found is None:
        raise KeyError(f"no registry step {step!r}")
    return found


class StepLambdas(Construct):
    """One function per registry entry (every workflow's: registry.HANDLERS), named registry.function_name(step).

    The operations' steps (capture, cancel, refund) are sized like the saga's: a forward step gets `step_concurrency`,
    a compensation or recovery step `compensation_concurrency`."""

    def __init__(self, scope: Construct, construct_id: str, base: FunctionBase, *, prefix: str,
                 step_concurrency: int, compensation_concurrency: int) -> None:
        super().__init__(scope, construct_id)
        self.by_step: dict[str, lambda_.Function] = {}
        for step, target in registry.HANDLERS.items():
            role = registry_step(step).role
            workflow = "payment saga" if step in registry.STEPS else "operation"
            self.by_step[step] = make_function(
                self, step, base,
                name=registry.function_name(step, prefix),
                handler=lambda_handler(target),
                timeout=STEP_TIMEOUT,
                memory_mb=STEP_MEMORY_MB,
                reserved_concurrency=step_concurrency if role is registry.Role.FORWARD else compensation_concurrency,
                service=telemetry_names.SERVICE_STEPS,
                description=f"{workflow} step {step} ({role})",
            )


class StartFunction(Construct):
    """saga.handler.handler: the API's proxy integration target; runs the saga with StartSyncExecution."""

    def __init__(self, scope: Construct, construct_id: str, base: FunctionBase, *, name: str,
                 reserved_concurrency: int) -> None:
        super().__init__(scope, construct_id)
        self.function = make_function(
            self, "Function", base,
            name=name,
            handler=START_HANDLER,
            timeout=Duration.seconds(START_TIMEOUT_S),
            memory_mb=START_MEMORY_MB,
            reserved_concurrency=reserved_concurrency,
            service=telemetry_names.SERVICE_START,
            description="the merchants' API: the idempotency gate, then the payment saga or an operation's machine",
        )
