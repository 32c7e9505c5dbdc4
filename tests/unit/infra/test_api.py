"""The REST API: the payment routes proxied to the start function, the webhook route to the webhook function, a
regional stage behind a WAF web ACL."""

from __future__ import annotations

from infra.api import MANAGED_RULE_GROUPS
from tests.unit.infra.support import START, WEBHOOKS, Synth, functions_by_name, only


def _path(synth: Synth, resource_id: str) -> str:
    parts = []
    resources = synth.of_type("AWS::ApiGateway::Resource")
    while resource_id in resources:
        props = resources[resource_id]["Properties"]
        parts.append(props["PathPart"])
        parent = props["ParentId"]
        resource_id = parent.get("Ref", "")
    return "/" + "/".join(reversed(parts))


def test_routes_proxy_payments_to_the_start_function_and_webhooks_to_theirs(synth: Synth) -> None:
    functions = functions_by_name(synth)
    target_of = {functions[START][0]: START, functions[WEBHOOKS][0]: WEBHOOKS}
    routes = set()
    for method in synth.of_type("AWS::ApiGateway::Method").values():
        props = method["Properties"]
        integration = props["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        uri = str(integration["Uri"]).replace("'", '"')
        (target,) = [name for logical_id, name in target_of.items() if f'"{logical_id}"' in uri]
        assert integration["TimeoutInMillis"] <= 29_000
        routes.add((props["HttpMethod"], _path(synth, props["ResourceId"]["Ref"]), target))
    assert routes == {("POST", "/v1/payments", START), ("GET", "/v1/payments/{payment_id}", START),
                      ("POST", "/v1/webhooks/{gateway}", WEBHOOKS)}


def test_the_stage_is_associated_with_a_waf_acl_with_managed_rules_and_a_rate_limit(synth: Synth) -> None:
    acl_id, acl = only(synth.of_type("AWS::WAFv2::WebACL"))
    props = acl["Properties"]
    assert props["Scope"] == "REGIONAL"
    rules = {rule["Name"]: rule for rule in props["Rules"]}
    managed = {r["Statement"]["ManagedRuleGroupStatement"]["Name"] for r in rules.values()
               if "ManagedRuleGroupStatement" in r["Statement"]}
    assert managed == set(MANAGED_RULE_GROUPS)
    assert "AWSManagedRulesCommonRuleSet" in managed
    (rate,) = [r for r in rules.values() if "RateBasedStatement" in r["Statement"]]
    assert rate["Action"] == {"Block": {}}
    assert rate["Statement"]["RateBasedStatement"]["AggregateKeyType"] == "IP"
    assert 100 <= rate["Statement"]["RateBasedStatement"]["Limit"] <= 10_000
    assert len({r["Priority"] for r in rules.values()}) == len(rules)

    _, stage = only(synth.of_type("AWS::ApiGateway::Stage"))
    _, association = only(synth.of_type("AWS::WAFv2::WebACLAssociation"))
    assert association["Properties"]["WebACLArn"] == {"Fn::GetAtt": [acl_id, "Arn"]}
    arn = str(association["Properties"]["ResourceArn"])
    assert "/stages/" in arn and stage["Properties"]["StageName"] in arn
    assert stage["Properties"]["TracingEnabled"] is True
    assert "AccessLogSetting" in stage["Properties"]
