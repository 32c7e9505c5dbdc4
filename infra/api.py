"""The public API: a regional REST API (the merchants' routes, START_ROUTES, proxied to the start function; the
gateways' webhooks to their own function; the operations console's routes to the console function, behind its own
authorizer) behind a WAF web ACL."""

from __future__ import annotations

import json
from typing import Final

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from core import limits

STAGE_NAME: Final[str] = "prod"
# The merchants' routes (saga/handler.py), each a method of its own resource, all proxied to the start function: the
# checkout and its read, then the operations after checkout (saga.operate: each runs its workflow's state machine) and
# the refunds' reads. Authentication is the start function's (the merchant's API key), as for POST /v1/payments; the
# web ACL is the stage's, so it covers every route.
START_ROUTE: Final[tuple[str, str]] = ("POST", "/v1/payments")
START_ROUTES: Final[tuple[tuple[str, str], ...]] = (
    START_ROUTE,
    ("GET", "/v1/payments/{payment_id}"),
    ("POST", "/v1/payments/{payment_id}/capture"),
    ("POST", "/v1/payments/{payment_id}/cancel"),
    ("POST", "/v1/payments/{payment_id}/refunds"),
    ("GET", "/v1/payments/{payment_id}/refunds"),
    ("GET", "/v1/refunds/{refund_id}"),
    # The merchant's webhook endpoints (saga/api/webhook_endpoints.py), behind the merchant's key like the rest.
    ("POST", "/v1/webhook_endpoints"),
    ("GET", "/v1/webhook_endpoints"),
    ("DELETE", "/v1/webhook_endpoints/{endpoint_id}"),
    ("POST", "/v1/webhook_endpoints/{endpoint_id}/rotate_secret"),
    ("POST", "/v1/webhook_endpoints/{endpoint_id}/resend_failed"),
    ("POST", "/v1/events/{event_id}/resend"),
)
WEBHOOK_ROUTE: Final[tuple[str, str]] = ("POST", "/v1/webhooks/{gateway}")
# The operations console (infra/console.py, saga/console/handler.py), all proxied to the console function. The login
# form and the static files it loads are open (signing in needs no session); every other console path goes through
# the console's REQUEST authorizer first. API Gateway matches the most specific resource, so /console/login and
# /console/static/... never fall to /console/{proxy+}.
CONSOLE_PUBLIC_ROUTES: Final[tuple[tuple[str, str], ...]] = (
    ("GET", "/console/login"),
    ("POST", "/console/login"),
    ("GET", "/console/static/{proxy+}"),
)
CONSOLE_ROUTES: Final[tuple[tuple[str, str], ...]] = (
    ("ANY", "/console"),
    ("ANY", "/console/{proxy+}"),
)
# The authorizer reads the session from the Cookie header (saga/console/authorizer.py); API Gateway answers 401
# itself to a request without one. Its answers are never cached: a session closed, revoked or idled out ends with
# the next request, not a cache entry's lifetime later.
CONSOLE_IDENTITY_HEADER: Final[str] = "Cookie"
CONSOLE_AUTHORIZER_CACHE_TTL: Final[Duration] = Duration.seconds(0)
# API Gateway's default integration ceiling. A saga can run longer (Express allows 5 min): the client then gets 504
# and retries with the same Idempotency-Key, which answers 409 while in flight and the stored response afterwards.
INTEGRATION_TIMEOUT: Final[Duration] = Duration.millis(limits.API_INTEGRATION_TIMEOUT_MS)
MANAGED_RULE_GROUPS: Final[tuple[str, ...]] = (
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
)

# ---- The web ACL in front of the API ---------------------------------------------------------------------------
#
# Rules in priority order: the two rate limits (429), the body size (413), then AWS's managed groups (403). WAF answers
# the API's own error shape ({"error": {"type", "message", "field"?}}, saga/api/errors.py) where it answers for the API.

RULE_RATE_PER_API_KEY: Final[str] = "RateLimitPerApiKey"
RULE_RATE_PER_IP: Final[str] = "RateLimitPerIp"
RULE_BODY_TOO_LARGE: Final[str] = "BodyTooLarge"
# The managed common rule set's own body rule blocks bodies over 8 KB with 403, below the API's documented limit: it
# only counts (its label and metric stay), and RULE_BODY_TOO_LARGE answers 413 at the API's limit instead.
COMMON_RULE_SET: Final[str] = "AWSManagedRulesCommonRuleSet"
COMMON_BODY_SIZE_RULE: Final[str] = "SizeRestrictions_BODY"
# WAF counts each rate over a sliding window of this many seconds (the config's limits are per 5 minutes).
RATE_WINDOW_S: Final[int] = 300
# Retry-After of a 429: a client that stops for a minute lets a fifth of the window age out; one that retries sooner
# keeps its rate up (WAF counts what it blocks) and gets another 429.
RATE_LIMITED_RETRY_AFTER_S: Final[int] = 60
# How much of a request body WAF reads for an API Gateway REST API (16 KiB by default; more costs extra). A larger
# body is "oversize": the size rule matches it without reading it (OversizeHandling MATCH). The API's limit must not
# exceed what WAF reads, or WAF could not tell a body within the limit from one over it.
BODY_INSPECTION_LIMIT: Final[str] = "KB_16"
BODY_INSPECTION_BYTES: Final[int] = 16 * 1024
assert limits.MAX_BODY_BYTES <= BODY_INSPECTION_BYTES, "WAF must read as much of a body as the API accepts"

BODY_TOO_LARGE_RESPONSE: Final[str] = "PayloadTooLarge"
RATE_PER_API_KEY_RESPONSE: Final[str] = "TooManyRequestsPerApiKey"
RATE_PER_IP_RESPONSE: Final[str] = "TooManyRequestsPerIp"


def _error_body(error: str, message: str, field: str | None = None) -> str:
    """The API's error body (saga/api/errors.py ApiError.body, serialized as its json_response does)."""
    detail = {"type": error, "message": message} | ({"field": field} if field is not None else {})
    return json.dumps({"error": detail}, separators=(",", ":"), sort_keys=True)


# Custom response body key -> (HTTP status, body); WAF sends them as application/json.
CUSTOM_RESPONSES: Final[dict[str, tuple[int, str]]] = {
    BODY_TOO_LARGE_RESPONSE: (413, _error_body(
        "PayloadTooLarge", f"the body must be at most {limits.MAX_BODY_BYTES} bytes", "body")),
    RATE_PER_API_KEY_RESPONSE: (429, _error_body(
        "TooManyRequests", "too many requests with this API key; retry after Retry-After seconds with the same "
                           "Idempotency-Key", "Authorization")),
    RATE_PER_IP_RESPONSE: (429, _error_body(
        "TooManyRequests", "too many requests from this address; retry after Retry-After seconds with the same "
                           "Idempotency-Key")),
}


def _visibility(metric_name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=metric_name, sampled_requests_enabled=True)


def _block(response: str, headers: dict[str, str] | None = None) -> wafv2.CfnWebACL.RuleActionProperty:
    status, _ = CUSTOM_RESPONSES[response]
    return wafv2.CfnWebACL.RuleActionProperty(block=wafv2.CfnWebACL.BlockActionProperty(
        custom_response=wafv2.CfnWebACL.CustomResponseProperty(
            response_code=status, custom_response_body_key=response,
            response_headers=[wafv2.CfnWebACL.CustomHTTPHeaderProperty(name=name, value=value)
                              for name, value in (headers or {}).items()] or None)))


def _rate_limited(response: str) -> wafv2.CfnWebACL.RuleActionProperty:
    return _block(response, {"Retry-After": str(RATE_LIMITED_RETRY_AFTER_S)})


def custom_response_bodies() -> dict[str, wafv2.CfnWebACL.CustomResponseBodyProperty]:
    return {key: wafv2.CfnWebACL.CustomResponseBodyProperty(content_type="APPLICATION_JSON", content=body)
            for key, (_, body) in CUSTOM_RESPONSES.items()}


def waf_rules(*, requests_per_api_key_per_5min: int, requests_per_ip_per_5min: int,
              ) -> list[wafv2.CfnWebACL.RuleProperty]:
    rules = [
        # Per merchant API key (the Authorization header, whatever it holds): one merchant, or a leaked key, cannot
        # take the capacity every merchant shares. A request without the header (the gateways' webhooks) is not
        # counted here, only per IP.
        wafv2.CfnWebACL.RuleProperty(
            name=RULE_RATE_PER_API_KEY,
            priority=0,
            action=_rate_limited(RATE_PER_API_KEY_RESPONSE),
            statement=wafv2.CfnWebACL.StatementProperty(
                rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                    limit=requests_per_api_key_per_5min, aggregate_key_type="CUSTOM_KEYS",
                    evaluation_window_sec=RATE_WINDOW_S,
                    custom_keys=[wafv2.CfnWebACL.RateBasedStatementCustomKeyProperty(
                        header=wafv2.CfnWebACL.RateLimitHeaderProperty(
                            name="authorization",
                            text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(
                                priority=0, type="NONE")]))])),
            visibility_config=_visibility(RULE_RATE_PER_API_KEY),
        ),
        # Per client IP, looser than per key (config.py keeps it so): a merchant sends from a few egress addresses,
        # and must meet its key's limit first; this one stops a single address flooding, or cycling made-up keys.
        wafv2.CfnWebACL.RuleProperty(
            name=RULE_RATE_PER_IP,
            priority=1,
            action=_rate_limited(RATE_PER_IP_RESPONSE),
            statement=wafv2.CfnWebACL.StatementProperty(
                rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                    limit=requests_per_ip_per_5min, aggregate_key_type="IP", evaluation_window_sec=RATE_WINDOW_S)),
            visibility_config=_visibility(RULE_RATE_PER_IP),
        ),
        # The API's own body limit, answered as the API answers it (413, not the managed rule's 403 at 8 KB).
        wafv2.CfnWebACL.RuleProperty(
            name=RULE_BODY_TOO_LARGE,
            priority=2,
            action=_block(BODY_TOO_LARGE_RESPONSE),
            statement=wafv2.CfnWebACL.StatementProperty(
                size_constraint_statement=wafv2.CfnWebACL.SizeConstraintStatementProperty(
                    field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(
                        body=wafv2.CfnWebACL.BodyProperty(oversize_handling="MATCH")),
                    comparison_operator="GT",
                    size=limits.MAX_BODY_BYTES,
                    text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")])),
            visibility_config=_visibility(RULE_BODY_TOO_LARGE),
        ),
    ]
    for priority, group in enumerate(MANAGED_RULE_GROUPS, start=len(rules)):
        overrides = [wafv2.CfnWebACL.RuleActionOverrideProperty(
            name=COMMON_BODY_SIZE_RULE, action_to_use=wafv2.CfnWebACL.RuleActionProperty(count={}))]
        rules.append(wafv2.CfnWebACL.RuleProperty(
            name=group,
            priority=priority,
            override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
            statement=wafv2.CfnWebACL.StatementProperty(
                managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                    vendor_name="AWS", name=group,
                    rule_action_overrides=overrides if group == COMMON_RULE_SET else None)),
            visibility_config=_visibility(group),
        ))
    return rules


# The headers WAF's logs never show (lower case, as WAF matches them): the merchants' API key, the console's session.
WAF_REDACTED_HEADERS: Final[tuple[str, ...]] = ("authorization", CONSOLE_IDENTITY_HEADER.lower())


def waf_log_group_name(name: str) -> str:
    """WAF logs only to a log group whose name starts with `aws-waf-logs-`."""
    return f"aws-waf-logs-{name}-api"


class PaymentsApi(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, name: str, handler: lambda_.IFunction,
                 webhook_handler: lambda_.IFunction, console_handler: lambda_.IFunction,
                 console_authorizer: lambda_.IFunction, waf_requests_per_api_key_per_5min: int,
                 waf_requests_per_ip_per_5min: int, log_retention: logs.RetentionDays,
                 log_encryption_key: kms.IKey | None = None) -> None:
        super().__init__(scope, construct_id)
        # Each request's method, route, status, latency and client address (never a body): kept a year, encrypted.
        access_logs = logs.LogGroup(self, "AccessLogs", log_group_name=f"/{name}/api/access", retention=log_retention,
                                    encryption_key=log_encryption_key, removal_policy=RemovalPolicy.RETAIN)
        self.api = apigw.RestApi(
            self, "Api",
            rest_api_name=name,
            description="paysaga: POST /v1/payments (synchronous saga), GET /v1/payments/{payment_id}, capture, "
                        "cancel and refunds of a payment, POST /v1/webhooks/{gateway}, the operations console "
                        "(/console)",
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
        # One resource per path part (its construct id), so the routes that were there keep their logical ids.
        self.merchant_methods = [self.api.root.resource_for_path(path).add_method(method, integration)
                                 for method, path in START_ROUTES]
        self.start_route_path = START_ROUTE[1]  # the start path's route (its per-method metrics name it)
        # Gateways' events: their own function; the signature is the authentication (no merchant key).
        webhook_integration = apigw.LambdaIntegration(webhook_handler, proxy=True, timeout=INTEGRATION_TIMEOUT)
        self.webhook_method = self.api.root.resource_for_path(WEBHOOK_ROUTE[1]).add_method(
            WEBHOOK_ROUTE[0], webhook_integration)
        # The operations console: its own function, its own authorizer (the operator's session cookie).
        self.console_authorizer = apigw.RequestAuthorizer(
            self, "ConsoleAuthorizer",
            authorizer_name=f"{name}-console",
            handler=console_authorizer,
            identity_sources=[apigw.IdentitySource.header(CONSOLE_IDENTITY_HEADER)],
            results_cache_ttl=CONSOLE_AUTHORIZER_CACHE_TTL,
        )
        console_integration = apigw.LambdaIntegration(console_handler, proxy=True, timeout=INTEGRATION_TIMEOUT)
        self.console_public_methods = [
            self.api.root.resource_for_path(path).add_method(method, console_integration)
            for method, path in CONSOLE_PUBLIC_ROUTES]
        self.console_methods = [
            self.api.root.resource_for_path(path).add_method(
                method, console_integration, authorizer=self.console_authorizer,
                authorization_type=apigw.AuthorizationType.CUSTOM)
            for method, path in CONSOLE_ROUTES]

        self.waf_rules = waf_rules(requests_per_api_key_per_5min=waf_requests_per_api_key_per_5min,
                                   requests_per_ip_per_5min=waf_requests_per_ip_per_5min)
        self.web_acl_metric_name = f"{name}-api"  # WAF's metrics name the web ACL by its metric name
        self.web_acl = wafv2.CfnWebACL(
            self, "WebAcl",
            name=f"{name}-api",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            rules=self.waf_rules,
            custom_response_bodies=custom_response_bodies(),
            association_config=wafv2.CfnWebACL.AssociationConfigProperty(request_body={
                "API_GATEWAY": wafv2.CfnWebACL.RequestBodyAssociatedResourceTypeConfigProperty(
                    default_size_inspection_limit=BODY_INSPECTION_LIMIT)}),
            visibility_config=_visibility(self.web_acl_metric_name),
        )
        self.web_acl_association = wafv2.CfnWebACLAssociation(
            self, "WebAclAssociation",
            resource_arn=self.api.deployment_stage.stage_arn,
            web_acl_arn=self.web_acl.attr_arn,
        )
        # Every request WAF saw, allowed or not (what a merchant's "why was I refused" needs), with the merchant's API
        # key and the operators' console session cookie redacted: WAF logs each request's headers.
        self.waf_logs = logs.LogGroup(
            self, "WafLogs",
            log_group_name=waf_log_group_name(name),
            retention=log_retention,
            encryption_key=log_encryption_key,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.waf_logging = wafv2.CfnLoggingConfiguration(
            self, "WafLogging",
            resource_arn=self.web_acl.attr_arn,
            # WAF wants the log group's ARN without the ":*" CloudFormation's Arn attribute ends with.
            log_destination_configs=[Stack.of(self).format_arn(
                service="logs", resource="log-group", resource_name=self.waf_logs.log_group_name,
                arn_format=ArnFormat.COLON_RESOURCE_NAME)],
            redacted_fields=[wafv2.CfnLoggingConfiguration.FieldToMatchProperty(single_header={"Name": header})
                             for header in WAF_REDACTED_HEADERS],
        )
