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

# The log level and whether states' inputs and outputs are logged: deployment settings (infra/config.py
# workflow_log_level, workflow_log_execution_data). Every payment's outcome is the project's own record
# (saga_executions, DESIGN.md 9); these logs give the operations console the state-by-state timeline Express keeps
# nowhere else.
LOG_LEVELS: Final[dict[str, sfn.LogLevel]] = {"ALL": sfn.LogLevel.ALL, "ERROR": sfn.LogLevel.ERROR}
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
                 functions: Mapping[str, lambda_.IFunction], log_policy: LogPolicy, log_level: str = "ALL",
                 log_execution_data: bool = False) -> None:
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
            logs=sfn.LogOptions(destination=self.log_group, level=LOG_LEVELS[log_level],
                                include_execution_data=log_execution_data),
            tracing_enabled=True,
        )
        # The unqualified ARNs the definition names, and nothing else (grant_invoke would add every version, ':*').
        self.state_machine.add_to_role_policy(iam.PolicyStatement(
            actions=["lambda:InvokeFunction"], resources=[function.function_arn for function in invoked.values()]))
        if log_level != "ALL":
            NagSuppressions.add_resource_suppressions(self.state_machine, [NagPackSuppression(
                id="AwsSolutions-SF1",
                reason="logging at ERROR by the deployment's choice (context workflow_log_level): every payment's "
                       "outcome is in saga_executions, every operation's in payment_operations; the console's "
                       "timelines then show the failed states only")])
        NagSuppressions.add_resource_suppressions(self.state_machine.role, [
            NagPackSuppression(
                id="AwsSolutions-IAM5", applies_to=["Resource::*"],
                reason="CDK's statements for the state machine's log delivery (logs:CreateLogDelivery and the other "
                       "vended-log actions) and X-Ray (xray:PutTraceSegments...): both services grant them on '*' "
                       "only"),
        ], apply_to_children=True)


def express_workflows(scope: Construct, *, names: ResourceNames, functions: Mapping[str, lambda_.IFunction],
                      log_policy: LogPolicy, log_level: str = "ALL", log_execution_data: bool = False
                      ) -> dict[Workflow, ExpressWorkflow]:
    """Every workflow's state machine, in the registry's order (the payment saga first)."""
    return {workflow: ExpressWorkflow(scope, CONSTRUCT_IDS[workflow], workflow=workflow, names=names,
                                      functions=functions, log_policy=log_policy, log_level=log_level,
                                      log_execution_data=log_execution_data)
            for workflow in Workflow}
