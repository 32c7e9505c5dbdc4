"""The Express state machine: statemachine.asl.json as is, `${<Step>FunctionArn}` substituted with the real ARNs."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import RemovalPolicy
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from infra.paths import STATE_MACHINE_FILE
from steps import registry


class PaymentSaga(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, name: str,
                 functions: Mapping[str, lambda_.IFunction], log_retention: logs.RetentionDays) -> None:
        super().__init__(scope, construct_id)
        missing = sorted(set(registry.HANDLERS) - set(functions))
        if missing:
            raise ValueError(f"no Lambda function for registry steps {missing}")
        # Express executions keep no history outside these logs (DESIGN.md 9): log everything, inputs included.
        # The /aws/vendedlogs/ prefix keeps CloudWatch's log resource policy from growing per log group.
        self.log_group = logs.LogGroup(self, "Logs", log_group_name=f"/aws/vendedlogs/states/{name}",
                                       retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        self.state_machine = sfn.StateMachine(
            self, "StateMachine",
            state_machine_name=name,
            state_machine_type=sfn.StateMachineType.EXPRESS,
            definition_body=sfn.DefinitionBody.from_file(str(STATE_MACHINE_FILE)),
            definition_substitutions={
                registry.substitution_key(step): function.function_arn for step, function in functions.items()
            },
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=True,
        )
        for function in functions.values():
            function.grant_invoke(self.state_machine)
