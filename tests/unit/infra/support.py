"""Synthesis and lookups over the synthesized template shared by the infra tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_cdk import App
from aws_cdk.assertions import Template

from core.settings import Settings
from infra.app import build
from infra.names import ResourceNames
from steps import registry

START = ResourceNames(registry.FUNCTION_NAME_PREFIX).start_function
WEBHOOKS = ResourceNames(registry.FUNCTION_NAME_PREFIX).webhook_function
SYNC = ResourceNames(registry.FUNCTION_NAME_PREFIX).sync_function


@dataclass(frozen=True)
class Synth:
    template: Template
    outdir: Path

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.template.to_json()["Resources"])

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {logical_id: r for logical_id, r in self.resources.items() if r["Type"] == cfn_type}

    def asset(self, s3_key: str) -> Path:
        """The staged file or folder of an asset, from the S3 key the template names ('<hash>.zip'/'<hash>.json')."""
        stem, _, suffix = s3_key.partition(".")
        path = self.outdir / f"asset.{stem}" if suffix == "zip" else self.outdir / f"asset.{s3_key}"
        assert path.exists(), f"no staged asset for {s3_key} in {self.outdir}"
        return path


def synthesize(outdir: Path, context: dict[str, Any] | None = None) -> Synth:
    app = App(outdir=str(outdir), context=context or {})
    stack = build(app)
    app.synth()
    return Synth(template=Template.from_stack(stack), outdir=outdir)


def join_text(value: Any) -> str:
    """A CloudFormation value flattened to text (Fn::Join parts joined, Refs and GetAtts as their JSON)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(join_text(part) for part in parts)
    return json.dumps(value, sort_keys=True)


def settings_env_names() -> set[str]:
    """Every environment variable name core/settings.py reads."""
    names = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        assert isinstance(alias, str), "settings name each variable explicitly"
        names.add(alias)
    return names


def settings_default(field: str) -> str:
    value = Settings.model_fields[field].default
    assert isinstance(value, str)
    return value


def functions_by_name(synth: Synth) -> dict[str, tuple[str, dict[str, Any]]]:
    """FunctionName -> (logical id, properties) of every Lambda function in the stack."""
    found = {}
    for logical_id, resource in synth.of_type("AWS::Lambda::Function").items():
        props = resource["Properties"]
        found[props["FunctionName"]] = (logical_id, props)
    return found


def step_function_ids(synth: Synth) -> dict[str, str]:
    """Registry step -> logical id of its Lambda function."""
    by_name = functions_by_name(synth)
    return {step: by_name[registry.function_name(step)][0] for step in registry.HANDLERS}


def only(resources: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    assert len(resources) == 1, f"expected one resource, found {sorted(resources)}"
    return next(iter(resources.items()))


def policy_statements_of_role(synth: Synth, role_logical_id: str) -> list[dict[str, Any]]:
    """Every IAM statement attached to a role through AWS::IAM::Policy resources."""
    statements = []
    for resource in synth.of_type("AWS::IAM::Policy").values():
        props = resource["Properties"]
        if {"Ref": role_logical_id} in props["Roles"]:
            statements.extend(props["PolicyDocument"]["Statement"])
    return statements


def actions_of(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)
