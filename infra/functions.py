"""The Lambda functions: one per entry of steps.registry.HANDLERS, plus the start function behind the API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from core import limits
from infra.code_asset import RUNTIME
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


def lambda_handler(target: str) -> str:
    """'steps.validate:handler' (registry form) -> 'steps.validate.handler' (Lambda's form)."""
    module, sep, function = target.partition(":")
    if not sep or not module or not function:
        raise ValueError(f"registry handler {target!r} is not 'module:function'")
    return f"{module}.{function}"


@dataclass(frozen=True)
class FunctionBase:
    """What every function shares."""

    code: lambda_.Code
    environment: Mapping[str, str]
    network: Network
    layers: Sequence[lambda_.ILayerVersion]
    log_retention: logs.RetentionDays


def make_function(scope: Construct, construct_id: str, base: FunctionBase, *, name: str, handler: str,
                  timeout: Duration, memory_mb: int, reserved_concurrency: int) -> lambda_.Function:
    log_group = logs.LogGroup(scope, f"{construct_id}Logs", log_group_name=f"/aws/lambda/{name}",
                              retention=base.log_retention, removal_policy=RemovalPolicy.DESTROY)
    return lambda_.Function(
        scope, construct_id,
        function_name=name,
        runtime=RUNTIME,
        architecture=lambda_.Architecture.X86_64,
        handler=handler,
        code=base.code,
        layers=list(base.layers),
        environment=dict(base.environment),
        timeout=timeout,
        memory_size=memory_mb,
        reserved_concurrent_executions=reserved_concurrency,
        vpc=base.network.vpc,
        vpc_subnets=base.network.app_subnets,
        security_groups=[base.network.functions_sg],
        tracing=lambda_.Tracing.ACTIVE,
        log_group=log_group,
    )


class StepLambdas(Construct):
    """One function per registry entry, named registry.function_name(step)."""

    def __init__(self, scope: Construct, construct_id: str, base: FunctionBase, *, prefix: str,
                 step_concurrency: int, compensation_concurrency: int) -> None:
        super().__init__(scope, construct_id)
        self.by_step: dict[str, lambda_.Function] = {}
        for step, target in registry.HANDLERS.items():
            compensation = registry.STEPS[step].role is not registry.Role.FORWARD
            self.by_step[step] = make_function(
                self, step, base,
                name=registry.function_name(step, prefix),
                handler=lambda_handler(target),
                timeout=STEP_TIMEOUT,
                memory_mb=512,
                reserved_concurrency=compensation_concurrency if compensation else step_concurrency,
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
            memory_mb=1_024,
            reserved_concurrency=reserved_concurrency,
        )
