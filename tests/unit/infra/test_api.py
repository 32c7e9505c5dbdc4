"""The REST API: the payment routes proxied to the start function, the webhook route to the webhook function, the
console's routes to the console function (tests/unit/infra/test_console.py), a regional stage behind a WAF web ACL."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from core.limits import MAX_BODY_BYTES
from infra.api import CONSOLE_PUBLIC_ROUTES, CONSOLE_ROUTES, MANAGED_RULE_GROUPS, START_ROUTES, WEBHOOK_ROUTE
from infra.config import config_from_context
from infra.paths import REPO_ROOT
from saga.api.errors import ApiError, error_response
from saga.api.request import parse_body
from steps import registry
from tests.unit.infra.support import (
    CONSOLE,
    START,
    WEBHOOKS,
    Synth,
    cdk_json_context,
    functions_by_name,
    join_text,
    only,
)


def api_path(synth: Synth, resource_id: str) -> str:
    """The path of an AWS::ApiGateway::Resource, from the root."""
    parts = []
    resources = synth.of_type("AWS::ApiGateway::Resource")
    while resource_id in resources:
        props = resources[resource_id]["Properties"]
        parts.append(props["PathPart"])
        parent = props["ParentId"]
        resource_id = parent.get("Ref", "")
    return "/" + "/".join(reversed(parts))


def routes(synth: Synth) -> dict[tuple[str, str], dict[str, Any]]:
    """(method, path) -> the method's properties, for every method of the API."""
    found = {}
    for method in synth.of_type("AWS::ApiGateway::Method").values():
        props = method["Properties"]
        found[(props["HttpMethod"], api_path(synth, props["ResourceId"]["Ref"]))] = props
    return found


def test_routes_proxy_payments_to_the_start_function_webhooks_and_the_console_to_theirs(synth: Synth) -> None:
    functions = functions_by_name(synth)
    target_of = {functions[START][0]: START, functions[WEBHOOKS][0]: WEBHOOKS, functions[CONSOLE][0]: CONSOLE}
    seen = set()
    for method in synth.of_type("AWS::ApiGateway::Method").values():
        props = method["Properties"]
        integration = props["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        uri = str(integration["Uri"]).replace("'", '"')
        (target,) = [name for logical_id, name in target_of.items() if f'"{logical_id}"' in uri]
        assert integration["TimeoutInMillis"] <= 29_000
        seen.add((props["HttpMethod"], api_path(synth, props["ResourceId"]["Ref"]), target))
    assert seen == {(method, path, START) for method, path in START_ROUTES} | {
        ("POST", "/v1/webhooks/{gateway}", WEBHOOKS)} | {
        (method, path, CONSOLE) for method, path in (*CONSOLE_PUBLIC_ROUTES, *CONSOLE_ROUTES)}


def test_the_start_functions_routes_are_exactly_the_routes_its_handler_answers() -> None:
    """Each route API Gateway sends to the start function is one saga/handler.py (or the webhook endpoints' routes it
    mounts) answers, and every merchant route they answer is reachable on AWS; `<id>` reads `{id}`. The gateways'
    webhooks go to their own function."""
    answered = set()
    for module in ("handler.py", "api/webhook_endpoints.py"):
        source = (REPO_ROOT / "saga" / module).read_text()
        answered |= {(method.upper(), re.sub(r"<([a-z_]+)>", r"{\1}", path))
                     for method, path in re.findall(r'@app\.(get|post|put|patch|delete)\("([^"]+)"\)', source)}
    assert set(START_ROUTES) == answered - {WEBHOOK_ROUTE}


def test_every_start_route_is_open_to_the_start_function_authenticating_itself_behind_the_stages_waf(
        synth: Synth) -> None:
    """No API Gateway authorizer or API key on any merchant or webhook route, as on POST /v1/payments: the start
    function checks the merchant's key, the webhook function the gateway's signature (the console's routes:
    tests/unit/infra/test_console.py); the web ACL is the stage's, so it covers every route."""
    found = routes(synth)
    for route in (*START_ROUTES, WEBHOOK_ROUTE):
        props = found[route]
        assert props["AuthorizationType"] == "NONE", route
        assert not props.get("ApiKeyRequired", False)
        assert "AuthorizerId" not in props
    (association,) = [r["Properties"] for r in synth.of_type("AWS::WAFv2::WebACLAssociation").values()]
    stage_id, _ = only(synth.of_type("AWS::ApiGateway::Stage"))
    assert stage_id in json.dumps(association["ResourceArn"])


def _web_acl(synth: Synth) -> tuple[str, dict[str, Any]]:
    acl_id, acl = only(synth.of_type("AWS::WAFv2::WebACL"))
    return acl_id, acl["Properties"]


def _rules(synth: Synth) -> dict[str, dict[str, Any]]:
    return {rule["Name"]: rule for rule in _web_acl(synth)[1]["Rules"]}


def _custom_response(synth: Synth, rule: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
    """(status, headers, parsed JSON body) of a rule that blocks with a custom response."""
    response = rule["Action"]["Block"]["CustomResponse"]
    body = _web_acl(synth)[1]["CustomResponseBodies"][response["CustomResponseBodyKey"]]
    assert body["ContentType"] == "APPLICATION_JSON"
    headers = {h["Name"]: h["Value"] for h in response.get("ResponseHeaders", [])}
    return response["ResponseCode"], headers, json.loads(body["Content"])


def test_the_stage_is_associated_with_a_waf_acl_with_managed_rules(synth: Synth) -> None:
    acl_id, props = _web_acl(synth)
    assert props["Scope"] == "REGIONAL"
    rules = _rules(synth)
    managed = {r["Statement"]["ManagedRuleGroupStatement"]["Name"] for r in rules.values()
               if "ManagedRuleGroupStatement" in r["Statement"]}
    assert managed == set(MANAGED_RULE_GROUPS)
    assert "AWSManagedRulesCommonRuleSet" in managed
    assert len({r["Priority"] for r in rules.values()}) == len(rules)

    _, stage = only(synth.of_type("AWS::ApiGateway::Stage"))
    _, association = only(synth.of_type("AWS::WAFv2::WebACLAssociation"))
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    arn = str(association["Properties"]["ResourceArn"])
    assert "/stages/" in arn and stage["Properties"]["StageName"] in arn
    assert stage["Properties"]["TracingEnabled"] is True
    assert "AccessLogSetting" in stage["Properties"]


def test_a_body_over_the_apis_limit_is_answered_413_as_the_api_answers_it(synth: Synth) -> None:
    """The managed 8 KB body rule only counts; ours blocks past MAX_BODY_BYTES with the API's own 413."""
    rules = _rules(synth)
    common = rules["AWSManagedRulesCommonRuleSet"]["Statement"]["ManagedRuleGroupStatement"]
    assert common["RuleActionOverrides"] == [{"Name": "SizeRestrictions_BODY", "ActionToUse": {"Count": {}}}]

    (size_rule,) = [r for r in rules.values() if "SizeConstraintStatement" in r["Statement"]]
    statement = size_rule["Statement"]["SizeConstraintStatement"]
    assert statement["FieldToMatch"] == {"Body": {"OversizeHandling": "MATCH"}}
    assert statement["ComparisonOperator"] == "GT" and statement["Size"] == MAX_BODY_BYTES
    # WAF reads 16 KiB of an API Gateway body: it can tell every body within the limit from one over it.
    assert _web_acl(synth)[1]["AssociationConfig"] == {
        "RequestBody": {"API_GATEWAY": {"DefaultSizeInspectionLimit": "KB_16"}}}
    assert MAX_BODY_BYTES <= 16 * 1024
    # Outranked only by the rate limits: a large body is 413, never the managed groups' 403.
    managed_priorities = [r["Priority"] for r in rules.values() if "ManagedRuleGroupStatement" in r["Statement"]]
    assert size_rule["Priority"] < min(managed_priorities)

    with pytest.raises(ApiError) as refused:
        parse_body("x" * (MAX_BODY_BYTES + 1))
    status, _, body = _custom_response(synth, size_rule)
    assert status == refused.value.status == 413
    assert body == json.loads(error_response(refused.value)["body"])


def test_rate_limits_per_api_key_and_looser_per_ip_answer_429_with_retry_after(synth: Synth) -> None:
    rules = _rules(synth)
    rate_rules = {name: r for name, r in rules.items() if "RateBasedStatement" in r["Statement"]}
    by_key = {r["Statement"]["RateBasedStatement"]["AggregateKeyType"]: r for r in rate_rules.values()}
    assert set(by_key) == {"CUSTOM_KEYS", "IP"}

    per_key = by_key["CUSTOM_KEYS"]["Statement"]["RateBasedStatement"]
    assert per_key["CustomKeys"] == [
        {"Header": {"Name": "authorization", "TextTransformations": [{"Priority": 0, "Type": "NONE"}]}}]
    per_ip = by_key["IP"]["Statement"]["RateBasedStatement"]
    # A merchant behind few addresses meets its key's limit before the per-IP one.
    assert per_ip["Limit"] >= per_key["Limit"] >= 100
    config = config_from_context(cdk_json_context().get)
    assert per_key["Limit"] == config.waf_requests_per_api_key_per_5min
    assert per_ip["Limit"] == config.waf_requests_per_ip_per_5min

    for rule in rate_rules.values():
        status, headers, body = _custom_response(synth, rule)
        assert status == 429
        assert int(headers["Retry-After"]) > 0
        assert body["error"]["type"] == "TooManyRequests" and body["error"]["message"]
        # Rate limits come first: every request counts toward them, and a flood is answered 429 before anything else.
        assert rule["Priority"] < min(r["Priority"] for r in rules.values() if r not in rate_rules.values())


def test_waf_logs_to_an_aws_waf_logs_group_with_the_api_key_redacted(synth: Synth) -> None:
    acl_id, _ = _web_acl(synth)
    _, logging = only(synth.of_type("AWS::WAFv2::LoggingConfiguration"))
    props = logging["Properties"]
    assert props["ResourceArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    # The merchants' API key and the operators' console session cookie.
    assert props["RedactedFields"] == [{"SingleHeader": {"Name": header}} for header in ("authorization", "cookie")]
    (destination,) = props["LogDestinationConfigs"]
    text = join_text(destination)
    assert ":log-group:" in text and not text.endswith(":*")
    (group_ref,) = [part for part in destination["Fn::Join"][1] if isinstance(part, dict) and "Ref" in part
                    and part["Ref"] in synth.of_type("AWS::Logs::LogGroup")]
    group = synth.resources[group_ref["Ref"]]
    assert group["Properties"]["LogGroupName"].startswith(f"aws-waf-logs-{registry.FUNCTION_NAME_PREFIX}")
    assert group["DeletionPolicy"] == "Retain"
    assert group["Properties"]["RetentionInDays"] >= 365
