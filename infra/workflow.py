"""The Express state machine: statemachine.asl.json as is, `${<Step>FunctionArn}` substituted with the real ARNs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra.log_groups import LogPolicy
from infra.names import ResourceNames
from infra.paths import STATE_MACHINE_FILE
from steps import registry

# Errors only, without execution data. The history of every payment is the project's own (the saga_executions table,
# DESIGN.md 9: each execution's outcome, error and cause, recorded by the start function and the steps), so these logs
# need not carry it: level ALL with inputs and outputs wrote about 23 KB per payment, merchant and payment data
# included, for CloudWatch to bill and keep. What ERROR keeps (the failed state, its error name and cause) is what an
# engineer looks for when saga_executions points at an execution.
LOG_LEVEL: Final[sfn.LogLevel] = sfn.LogLevel.ERROR
INCLUDE_EXECUTION_DATA: Final[bool] = False


class PaymentSaga(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, names: ResourceNames,
                 functions: Mapping[str, lambda_.IFunction], log_policy: LogPolicy) -> None:
        super().__init__(scope, construct_id)
        missing = sorted(set(registry.HANDLERS) - set(functions))
        if missing:
            raise ValueError(f"no Lambda function for registry steps {missing}")
        self.log_group = log_policy.log_group(self, "Logs", names.state_machine_log_group)
        self.state_machine = sfn.StateMachine(
            self, "StateMachine",
            state_machine_name=names.state_machine,
            state_machine_type=sfn.StateMachineType.EXPRESS,
            definition_body=sfn.DefinitionBody.from_file(str(STATE_MACHINE_FILE)),
            definition_substitutions={
                registry.substitution_key(step): function.function_arn for step, function in functions.items()
            },
            logs=sfn.LogOptions(destination=self.log_group, level=LOG_LEVEL,
                                include_execution_data=INCLUDE_EXECUTION_DATA),
            tracing_enabled=True,
        )
        # The unqualified ARNs the definition names, and nothing else (grant_invoke would add every version, ':*').
        self.state_machine.add_to_role_policy(iam.PolicyStatement(
            actions=["lambda:InvokeFunction"], resources=[function.function_arn for function in functions.values()]))
        NagSuppressions.add_resource_suppressions(self.state_machine, [NagPackSuppression(
            id="AwsSolutions-SF1",
            reason="logging at ERROR on purpose (LOG_LEVEL above): every payment's history is in the saga_executions "
                   "table; ALL would log each state's events, about 23 KB per payment, to no one's use")])
        NagSuppressions.add_resource_suppressions(self.state_machine.role, [
            NagPackSuppression(
                id="AwsSolutions-IAM5", applies_to=["Resource::*"],
                reason="CDK's statements for the state machine's log delivery (logs:CreateLogDelivery and the other "
                       "vended-log actions) and X-Ray (xray:PutTraceSegments...): both services grant them on '*' "
                       "only"),
        ], apply_to_children=True)
