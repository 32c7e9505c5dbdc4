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
    """Who authenticates each route: the merchants' and the gateways' in the application, the console's operators
    through its REQUEST authorizer, except on the login form."""
    for method in api.merchant_methods:
        NagSuppressions.add_resource_suppressions(method, [
            NagPackSuppression(
                id="AwsSolutions-APIG4",
                reason="merchants authenticate with their API key (Authorization: Bearer), checked by the start "
                       "function against its sha256 in the database (saga/merchant_keys.py). An API Gateway "
                       "authorizer would add a second lookup per payment"),
            NagPackSuppression(
                id="AwsSolutions-COG4",
                reason="the callers are merchants' servers with API keys, which hold no Cognito token"),
        ])
    NagSuppressions.add_resource_suppressions(api.webhook_method, [
        NagPackSuppression(
            id="AwsSolutions-APIG4",
            reason="payment gateways authenticate each webhook by its HMAC signature, checked by the webhook function "
                   "(saga/webhooks.py); they cannot present any other credential"),
        NagPackSuppression(
            id="AwsSolutions-COG4",
            reason="the callers are payment gateways sending signed webhooks, which hold no Cognito token"),
    ])
    for method in api.console_public_methods:
        NagSuppressions.add_resource_suppressions(method, [
            NagPackSuppression(
                id="AwsSolutions-APIG4",
                reason="the console's login form (GET and POST /console/login) and the static files it loads "
                       "(/console/static/...) are what an operator without a session reaches: POST checks the "
                       "username and password (store/operators.py authenticate) and opens the session every other "
                       "console route's authorizer requires; nothing behind them reads data"),
            NagPackSuppression(
                id="AwsSolutions-COG4",
                reason="operators sign in with the console's own accounts (the operators table, scrypt password "
                       "hashes, revocable sessions); there is no Cognito user pool to authorize against"),
        ])
    for method in api.console_methods:
        NagSuppressions.add_resource_suppressions(method, [NagPackSuppression(
            id="AwsSolutions-COG4",
            reason="authorized by the console's REQUEST authorizer (saga/console/authorizer.py: the session cookie "
                   "against operator_sessions, uncached so a revoked session ends at once); operators are the "
                   "console's own accounts, not a Cognito user pool's")])
    NagSuppressions.add_resource_suppressions(api.api, [
        NagPackSuppression(
            id="AwsSolutions-APIG2",
            reason="the start function validates every request itself and answers the documented error bodies "
                   "(openapi.yaml, saga/api/request.py: 400 naming the field, 413); API Gateway's validator would "
                   "answer its own shape first; WAF bounds the body size. The console validates its own forms and "
                   "queries (400 naming the parameter)"),
    ], apply_to_children=True)
    NagSuppressions.add_resource_suppressions(api.api, [NagPackSuppression(
        id="AwsSolutions-IAM4",
        applies_to=["Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"],
        reason="API Gateway's account-wide CloudWatch role (execution logging at ERROR): AWS's managed policy is the "
               "one API Gateway documents for it, and it is the account's single such role")],
        apply_to_children=True)
