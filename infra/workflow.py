"""The Express state machines, one per workflow (steps.registry.DEFINITION_FILES): the payment saga
(statemachine.asl.json) and the operations after checkout (capture.asl.json, cancel.asl.json, refund.asl.json), each
its file as is, every `${<Step>FunctionArn}` it names substituted with the real ARN, and its role allowed to invoke
exactly the functions its file names."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_stepfunctions as sfn
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra.log_groups import LogPolicy
from infra.names import ResourceNames
from infra.paths import definition_file
from steps import registry
from steps.registry import Workflow

# Errors only, without execution data. The history of every payment is the project's own (the saga_executions table,
# DESIGN.md 9: each execution's outcome, error and cause, recorded by the start function and the steps; an operation's
# in payment_operations), so these logs need not carry it: level ALL with inputs and outputs wrote about 23 KB per
# payment, merchant and payment data included, for CloudWatch to bill and keep. What ERROR keeps (the failed state,
# its error name and cause) is what an engineer looks for when saga_executions points at an execution.
LOG_LEVEL: Final[sfn.LogLevel] = sfn.LogLevel.ERROR
INCLUDE_EXECUTION_DATA: Final[bool] = False
# Each workflow's construct id. The saga's is the one it always had ("Saga"): its logical ids, and so the deployed
# state machine, its role and its log group, stay what they are.
CONSTRUCT_IDS: Final[dict[Workflow, str]] = {
    Workflow.PAYMENT: "Saga",
    Workflow.CAPTURE: "CaptureOperation",
    Workflow.CANCEL: "CancelOperation",
    Workflow.REFUND: "RefundOperation",
}
assert set(CONSTRUCT_IDS) == set(Workflow)
PLACEHOLDER: Final[re.Pattern[str]] = re.compile(r"\$\{[A-Za-z0-9_]+\}")


def invoked_steps(definition: str) -> tuple[str, ...]:
    """The registry steps a definition's Tasks invoke: its `${<Step>FunctionArn}` placeholders, in the order they
    first appear. A placeholder naming no registered step raises KeyError (registry.step_of_substitution)."""
    return tuple(dict.fromkeys(registry.step_of_substitution(found) for found in PLACEHOLDER.findall(definition)))


class ExpressWorkflow(Construct):
    """One workflow's Express state machine, its log group, and the invoke permission on its functions only."""

    def __init__(self, scope: Construct, construct_id: str, *, workflow: Workflow, names: ResourceNames,
                 functions: Mapping[str, lambda_.IFunction], log_policy: LogPolicy) -> None:
        super().__init__(scope, construct_id)
        self.workflow = workflow
        definition = definition_file(workflow)
        self.steps = invoked_steps(definition.read_text())
        if not self.steps:
            raise ValueError(f"{definition.name} invokes no registered step")
        missing = [step for step in self.steps if step not in functions]
        if missing:
            raise ValueError(f"no Lambda function for the steps {missing} {definition.name} invokes")
        invoked = {step: functions[step] for step in self.steps}
        self.log_group = log_policy.log_group(self, "Logs", names.workflow_log_group(workflow))
        self.state_machine = sfn.StateMachine(
            self, "StateMachine",
            state_machine_name=names.workflow_state_machine(workflow),
            state_machine_type=sfn.StateMachineType.EXPRESS,
            definition_body=sfn.DefinitionBody.from_file(str(definition)),
            definition_substitutions={
                registry.substitution_key(step): function.function_arn for step, function in invoked.items()
            },
            logs=sfn.LogOptions(destination=self.log_group, level=LOG_LEVEL,
                                include_execution_data=INCLUDE_EXECUTION_DATA),
            tracing_enabled=True,
        )
        # The unqualified ARNs the definition names, and nothing else (grant_invoke would add every version, ':*').
        self.state_machine.add_to_role_policy(iam.PolicyStatement(
            actions=["lambda:InvokeFunction"], resources=[function.function_arn for function in invoked.values()]))
        NagSuppressions.add_resource_suppressions(self.state_machine, [NagPackSuppression(
            id="AwsSolutions-SF1",
            reason="logging at ERROR on purpose (LOG_LEVEL above): every payment's history is in the saga_executions "
                   "table, every operation's in payment_operations; ALL would log each state's events, about 23 KB "
                   "per payment, to no one's use")])
        NagSuppressions.add_resource_suppressions(self.state_machine.role, [
            NagPackSuppression(
                id="AwsSolutions-IAM5", applies_to=["Resource::*"],
                reason="CDK's statements for the state machine's log delivery (logs:CreateLogDelivery and the other "
                       "vended-log actions) and X-Ray (xray:PutTraceSegments...): both services grant them on '*' "
                       "only"),
        ], apply_to_children=True)


def express_workflows(scope: Construct, *, names: ResourceNames, functions: Mapping[str, lambda_.IFunction],
                      log_policy: LogPolicy) -> dict[Workflow, ExpressWorkflow]:
    """Every workflow's state machine, in the registry's order (the payment saga first)."""
    return {workflow: ExpressWorkflow(scope, CONSTRUCT_IDS[workflow], workflow=workflow, names=names,
                                      functions=functions, log_policy=log_policy)
            for workflow in Workflow}
