"""cdk-nag suppressions that concern several constructs, each with its reason.

A finding on one resource is suppressed next to that resource (NagSuppressions.add_resource_suppressions), so the
reason sits beside the code it explains; what is here concerns a group of resources made in several places (the
functions invoked synchronously, the API's routes).

The packs run in infra/app.py build(); tests/unit/infra/test_lint.py fails on any unsuppressed finding (run it alone:
`.venv/bin/pytest tests/unit/infra/test_lint.py`; `make synth` prints the findings the way `cdk synth` does).
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Stack
from aws_cdk import aws_lambda as lambda_
from cdk_nag import NagPackSuppression, NagSuppressions

from infra.api import PaymentsApi

STACK_SUPPRESSIONS: tuple[NagPackSuppression, ...] = ()


def suppress_stack_findings(stack: Stack) -> None:
    if STACK_SUPPRESSIONS:
        NagSuppressions.add_stack_suppressions(stack, list(STACK_SUPPRESSIONS))


def suppress_synchronous_function_findings(functions: Sequence[lambda_.IFunction]) -> None:
    """Functions invoked synchronously (API Gateway's proxy integration, Step Functions Tasks)."""
    for function in functions:
        NagSuppressions.add_resource_suppressions(function, [NagPackSuppression(
            id="Serverless-LambdaDLQ",
            reason="invoked synchronously only (API Gateway proxy integration or a Step Functions Task): the caller "
                   "gets the error and retries or compensates; a dead-letter queue only serves asynchronous "
                   "invocations")])


def suppress_api_findings(api: PaymentsApi) -> None:
    """The API authenticates in the application, not in API Gateway."""
    NagSuppressions.add_resource_suppressions(api.api, [
        NagPackSuppression(
            id="AwsSolutions-APIG4",
            reason="merchants authenticate with their API key (Authorization: Bearer), checked by the start function "
                   "against its sha256 in the database (saga/merchant_keys.py); gateways' webhooks by their HMAC "
                   "signature (saga/webhooks.py). An API Gateway authorizer would add a second lookup per payment"),
        NagPackSuppression(
            id="AwsSolutions-COG4",
            reason="no end users: the callers are merchants' servers with API keys and payment gateways with signed "
                   "webhooks, neither of which holds a Cognito token"),
        NagPackSuppression(
            id="AwsSolutions-APIG2",
            reason="the start function validates every request itself and answers the documented error bodies "
                   "(openapi.yaml, saga/api/request.py: 400 naming the field, 413); API Gateway's validator would "
                   "answer its own shape first; WAF bounds the body size"),
    ], apply_to_children=True)
    NagSuppressions.add_resource_suppressions(api.api, [NagPackSuppression(
        id="AwsSolutions-IAM4",
        applies_to=["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"],
        reason="API Gateway's account-wide CloudWatch role (execution logging at ERROR): AWS's managed policy is the "
               "one API Gateway documents for it, and it is the account's single such role")],
        apply_to_children=True)
