"""Deployment settings from CDK context: parsing, bounds, defaults that fit payments, and their effect on the
synthesized stack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from infra.code_asset import LAYER_CONTEXT_KEY, LAYER_MAKE_TARGET, MissingLayerError
from infra.config import ACCOUNT_CONCURRENCY, UNRESERVED_MINIMUM, Config, config_from_context
from infra.functions import lambda_handler
from infra.paths import REPO_ROOT
from steps import registry
from tests.unit.infra.conftest import OTHER_CONTEXT, OTHER_PREFIX
from tests.unit.infra.support import Synth, cdk_json_context, functions_by_name, synthesize


def test_context_strings_become_typed_values() -> None:
    context = {"gateway": "sandbox", "waf_requests_per_api_key_per_5min": "500", "aurora_max_acu": "4",
               "step_concurrency": "20", "log_retention_days": "400"}
    config = config_from_context(context.get)
    assert config.waf_requests_per_api_key_per_5min == 500
    assert config.aurora_max_acu == 4.0
    assert config.step_concurrency == 20
    assert config.log_retention_days == 400
    assert config.prefix == registry.FUNCTION_NAME_PREFIX


@pytest.mark.parametrize("bad", [
    {"gateway": "paypal"}, {"waf_requests_per_ip_per_5min": "10"},
    {"waf_requests_per_api_key_per_5min": "5000", "waf_requests_per_ip_per_5min": "1000"},
    {"aurora_min_acu": "4", "aurora_max_acu": "2"}, {"step_concurrency": "0"}, {"step_concurrency": "many"},
    {"prefix": "Paysaga"}, {"prefix": "pay_saga"}, {"prefix": "paysaga-"}, {"prefix": "a" * 21},
    {"log_retention_days": "0"}, {"backup_retention_days": "36"}, {"secret_rotation_days": "0"},
    {"workflow_log_level": "DEBUG"}, {"workflow_log_execution_data": "sometimes"},
])
def test_out_of_bounds_context_is_refused(bad: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="context"):
        config_from_context(bad.get)


def test_registry_targets_become_lambda_handlers() -> None:
    assert lambda_handler("steps.validate:handler") == "steps.validate.handler"
    with pytest.raises(ValueError, match="module:function"):
        lambda_handler("steps.validate.handler")
    assert registry.STEPS["ValidatePayment"].role is registry.Role.FORWARD
    assert registry.STEPS["RejectPayment"].role is registry.Role.COMPENSATION


def test_defaults_fit_payments() -> None:
    config = Config()
    assert config.gateway == "sandbox"
    assert config.log_retention_days >= 365, "a year of logs: disputes and chargebacks come months later"
    assert config.backup_retention_days == 35, "the ledger keeps Aurora's longest point-in-time window"
    assert config.secret_rotation_days <= 90
    assert config.aurora_min_acu >= 1
    # The per-key limit is the tighter one: a merchant behind a few addresses meets it before the per-IP one.
    assert config.waf_requests_per_api_key_per_5min <= config.waf_requests_per_ip_per_5min
    # Every workflow's steps (the saga's and the operations'), sized by role; the whole stack's reservations are
    # summed from the template in test_concurrency.py.
    steps = registry.STEPS | registry.OPERATION_STEPS
    forward = sum(1 for step in steps.values() if step.role is registry.Role.FORWARD)
    reserved = (config.start_concurrency + forward * config.step_concurrency
                + (len(steps) - forward) * config.compensation_concurrency + config.webhook_concurrency)
    assert reserved <= ACCOUNT_CONCURRENCY - UNRESERVED_MINIMUM


def test_cdk_json_context_is_valid_and_names_the_layer_make_builds() -> None:
    context = cdk_json_context()
    config = config_from_context(context.get)
    assert config.prefix == registry.FUNCTION_NAME_PREFIX
    assert context[LAYER_CONTEXT_KEY] == Config().dependencies_layer_zip
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert f"LAYER_ZIP := {context[LAYER_CONTEXT_KEY]}" in makefile


def test_a_missing_layer_stops_the_synthesis_naming_the_key_and_the_make_target(tmp_path: Path) -> None:
    for missing in ("", str(tmp_path / "nowhere.zip")):
        with pytest.raises(MissingLayerError) as raised:
            synthesize(tmp_path / "cdk.out", context={LAYER_CONTEXT_KEY: missing})
        assert LAYER_CONTEXT_KEY in str(raised.value) and LAYER_MAKE_TARGET in str(raised.value)


def test_context_reaches_the_stack(other: Synth) -> None:
    (layer_id,) = other.of_type("AWS::Lambda::LayerVersion")
    for name, (_, props) in functions_by_name(other).items():
        assert name.startswith(f"{OTHER_PREFIX}-"), name
        assert props["Layers"] == [{"Ref": layer_id}], name
        assert props["Environment"]["Variables"]["SANDBOX_GATEWAY_URL"] == OTHER_CONTEXT["sandbox_gateway_url"]
        step_name = name.removeprefix(f"{OTHER_PREFIX}-")
        step = registry.STEPS.get(step_name) or registry.OPERATION_STEPS.get(step_name)
        if step is not None and step.role is registry.Role.FORWARD:
            assert props["ReservedConcurrentExecutions"] == int(OTHER_CONTEXT["step_concurrency"])
    subscriptions = [r["Properties"] for r in other.of_type("AWS::SNS::Subscription").values()]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("email", OTHER_CONTEXT["alarm_email"])]
    retentions = {r["Properties"]["RetentionInDays"] for r in other.of_type("AWS::Logs::LogGroup").values()}
    assert retentions == {400}


def test_cdk_json_context_gives_a_layer_and_no_sandbox_url_nor_subscription(synth: Synth) -> None:
    (layer_id,) = synth.of_type("AWS::Lambda::LayerVersion")
    assert synth.of_type("AWS::SNS::Subscription") == {}
    for name, (_, props) in functions_by_name(synth).items():
        assert "SANDBOX_GATEWAY_URL" not in props["Environment"]["Variables"], name
        assert props["Layers"] == [{"Ref": layer_id}], name
    assert json.loads(synth.template_file.read_text())["Resources"][layer_id]["Type"] == "AWS::Lambda::LayerVersion"
