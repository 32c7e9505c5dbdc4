"""The public API: a regional REST API (two routes, proxy integration to the start function) behind a WAF web ACL."""

from __future__ import annotations

from typing import Final

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from core import limits

STAGE_NAME: Final[str] = "prod"
# API Gateway's default integration ceiling. A saga can run longer (Express allows 5 min): the client then gets 504
# and retries with the same Idempotency-Key, which answers 409 while in flight and the stored response afterwards.
INTEGRATION_TIMEOUT: Final[Duration] = Duration.millis(limits.API_INTEGRATION_TIMEOUT_MS)
MANAGED_RULE_GROUPS: Final[tuple[str, ...]] = (
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
)


def _visibility(metric_name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=metric_name, sampled_requests_enabled=True)


def waf_rules(requests_per_5min: int) -> list[wafv2.CfnWebACL.RuleProperty]:
    rules = [
        wafv2.CfnWebACL.RuleProperty(
            name="RateLimitPerIp",
            priority=0,
            action=wafv2.CfnWebACL.RuleActionProperty(block={}),
            statement=wafv2.CfnWebACL.StatementProperty(
                rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                    limit=requests_per_5min, aggregate_key_type="IP", evaluation_window_sec=300)),
            visibility_config=_visibility("RateLimitPerIp"),
        ),
    ]
    for priority, group in enumerate(MANAGED_RULE_GROUPS, start=1):
        rules.append(wafv2.CfnWebACL.RuleProperty(
            name=group,
            priority=priority,
            override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
            statement=wafv2.CfnWebACL.StatementProperty(
                managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                    vendor_name="AWS", name=group)),
            visibility_config=_visibility(group),
        ))
    return rules


class PaymentsApi(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, name: str, handler: lambda_.IFunction,
                 webhook_handler: lambda_.IFunction, waf_requests_per_5min: int,
                 log_retention: logs.RetentionDays) -> None:
        super().__init__(scope, construct_id)
        access_logs = logs.LogGroup(self, "AccessLogs", retention=log_retention, removal_policy=RemovalPolicy.DESTROY)
        self.api = apigw.RestApi(
            self, "Api",
            rest_api_name=name,
            description="paysaga: POST /v1/payments (synchronous saga), GET /v1/payments/{payment_id}, "
                        "POST /v1/webhooks/{gateway}",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            cloud_watch_role=True,
            deploy_options=apigw.StageOptions(
                stage_name=STAGE_NAME,
                tracing_enabled=True,
                metrics_enabled=True,
                logging_level=apigw.MethodLoggingLevel.ERROR,
                data_trace_enabled=False,  # request bodies hold payment data: never log them
                access_log_destination=apigw.LogGroupLogDestination(access_logs),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=False, http_method=True, ip=True, protocol=True, request_time=True,
                    resource_path=True, response_length=True, status=True, user=False),
                throttling_rate_limit=200,
                throttling_burst_limit=400,
            ),
        )
        integration = apigw.LambdaIntegration(handler, proxy=True, timeout=INTEGRATION_TIMEOUT)
        payments = self.api.root.add_resource("v1").add_resource("payments")
        payments.add_method("POST", integration)
        payments.add_resource("{payment_id}").add_method("GET", integration)
        # Gateways' events: their own function; the signature is the authentication (no merchant key).
        webhooks = self.api.root.get_resource("v1")
        assert webhooks is not None
        webhook_integration = apigw.LambdaIntegration(webhook_handler, proxy=True, timeout=INTEGRATION_TIMEOUT)
        webhooks.add_resource("webhooks").add_resource("{gateway}").add_method("POST", webhook_integration)

        self.web_acl = wafv2.CfnWebACL(
            self, "WebAcl",
            name=f"{name}-api",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            rules=waf_rules(waf_requests_per_5min),
            visibility_config=_visibility(f"{name}-api"),
        )
        self.web_acl_association = wafv2.CfnWebACLAssociation(
            self, "WebAclAssociation",
            resource_arn=self.api.deployment_stage.stage_arn,
            web_acl_arn=self.web_acl.attr_arn,
        )
