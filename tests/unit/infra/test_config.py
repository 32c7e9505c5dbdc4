"""Deployment settings from CDK context: parsing, bounds, and their effect on the synthesized stack."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from infra.config import Config, config_from_context
from infra.functions import lambda_handler
from steps import registry
from tests.unit.infra.support import Synth, functions_by_name, synthesize


def test_context_strings_become_typed_values() -> None:
    context = {"gateway": "sandbox", "waf_requests_per_5min": "500", "aurora_max_acu": "4",
               "step_concurrency": "20"}
    config = config_from_context(context.get)
    assert config.waf_requests_per_5min == 500
    assert config.aurora_max_acu == 4.0
    assert config.step_concurrency == 20
    assert config.prefix == registry.FUNCTION_NAME_PREFIX


@pytest.mark.parametrize("bad", [{"gateway": "paypal"}, {"waf_requests_per_5min": "10"},
                                 {"aurora_min_acu": "4", "aurora_max_acu": "2"}, {"step_concurrency": "0"}])
def test_out_of_bounds_context_is_refused(bad: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="context"):
        config_from_context(bad.get)


def test_registry_targets_become_lambda_handlers() -> None:
    assert lambda_handler("steps.validate:handler") == "steps.validate.handler"
    with pytest.raises(ValueError, match="module:function"):
        lambda_handler("steps.validate.handler")
    assert registry.STEPS["ValidatePayment"].role is registry.Role.FORWARD
    assert registry.STEPS["RejectPayment"].role is registry.Role.COMPENSATION


def test_defaults_are_valid() -> None:
    assert Config().gateway == "sandbox"


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    layer_dir = tmp_path_factory.mktemp("layer")
    layer_zip = Path(layer_dir) / "deps.zip"
    with zipfile.ZipFile(layer_zip, "w") as archive:
        archive.writestr("python/placeholder.py", "")
    return synthesize(tmp_path_factory.mktemp("cdk.out.configured"), context={
        "sandbox_gateway_url": "https://sandbox.example.test",
        "alarm_email": "oncall@example.test",
        "dependencies_layer_zip": str(layer_zip),
        "step_concurrency": "7",
    })


def test_context_reaches_the_stack(configured: Synth) -> None:
    (layer_id,) = configured.of_type("AWS::Lambda::LayerVersion")
    for name, (_, props) in functions_by_name(configured).items():
        assert props["Layers"] == [{"Ref": layer_id}], name
        assert props["Environment"]["Variables"]["SANDBOX_GATEWAY_URL"] == "https://sandbox.example.test"
        step = registry.STEPS.get(name.removeprefix("paysaga-"))
        if step is not None and step.role is registry.Role.FORWARD:
            assert props["ReservedConcurrentExecutions"] == 7
    subscriptions = [r["Properties"] for r in configured.of_type("AWS::SNS::Subscription").values()]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [("email", "oncall@example.test")]


def test_without_context_there_is_no_layer_no_sandbox_url_no_subscription(synth: Synth) -> None:
    assert synth.of_type("AWS::Lambda::LayerVersion") == {}
    assert synth.of_type("AWS::SNS::Subscription") == {}
    for name, (_, props) in functions_by_name(synth).items():
        assert "SANDBOX_GATEWAY_URL" not in props["Environment"]["Variables"], name
        assert "Layers" not in props, name
