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
from infra.paths import REPO_ROOT
from steps import registry

NAMES = ResourceNames(registry.FUNCTION_NAME_PREFIX)
START = NAMES.start_function
WEBHOOKS = NAMES.webhook_function
SYNC = NAMES.sync_function
MIGRATIONS = NAMES.migrations_function
MERCHANT_ADMIN = NAMES.merchant_admin_function
NOTIFICATIONS_CONSUMER = NAMES.notifications_consumer_function
OUTBOX_RELAY = NAMES.outbox_relay_function
WEBHOOK_DELIVERY = NAMES.webhook_delivery_function
NOTIFICATION_FUNCTIONS = frozenset({NOTIFICATIONS_CONSUMER, OUTBOX_RELAY, WEBHOOK_DELIVERY})
RECONCILIATION = NAMES.reconciliation_function
# The operations console's function and its API Gateway authorizer (infra/console.py).
CONSOLE = NAMES.console_function
CONSOLE_AUTHORIZER = NAMES.console_authorizer_function
CONSOLE_FUNCTIONS = frozenset({CONSOLE, CONSOLE_AUTHORIZER})
# CDK's custom resource provider framework function (its code is CDK's, not ours).
PROVIDER = NAMES.migrations_provider_function
# The functions that serve payments (the API, the saga, the schedules, the notifications, the reconciliation) and
# their operators (the console), as opposed to the administration functions.
RUNTIME_FUNCTIONS = frozenset({START, WEBHOOKS, SYNC, RECONCILIATION}
                              | {registry.function_name(step) for step in registry.HANDLERS} | NOTIFICATION_FUNCTIONS
                              | CONSOLE_FUNCTIONS)


@dataclass(frozen=True)
class NagFinding:
    level: str  # "error" or "warning" (cdk-nag's annotations; "info" is not a finding)
    path: str  # the construct path the finding is on
    text: str  # "<rule id>: <what and why>"


@dataclass(frozen=True)
class Synth:
    template: Template
    outdir: Path
    template_file: Path
    findings: tuple[NagFinding, ...]
    # The template as JSON, read once (each Template.to_json() is a round trip through jsii: a second or so).
    data: dict[str, Any]

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.data["Resources"])

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {logical_id: r for logical_id, r in self.resources.items() if r["Type"] == cfn_type}

    def asset(self, s3_key: str) -> Path:
        """The staged file or folder of an asset, from the S3 key the template names ('<hash>.zip'/'<hash>.json')."""
        stem, _, suffix = s3_key.partition(".")
        # A folder zipped at publish time is staged as the folder; a file (a zip already) as itself.
        path = self.outdir / f"asset.{stem}" if suffix == "zip" else self.outdir / f"asset.{s3_key}"
        if not path.exists():
            path = self.outdir / f"asset.{s3_key}"
        assert path.exists(), f"no staged asset for {s3_key} in {self.outdir}"
        return path


def cdk_json_context() -> dict[str, Any]:
    """cdk.json's context: what `cdk synth`/`cdk deploy` give the app, so the tested template is the deployed one."""
    return dict(json.loads((REPO_ROOT / "cdk.json").read_text())["context"])


def synthesize(outdir: Path, context: dict[str, Any] | None = None) -> Synth:
    """The app as `cdk synth` builds it (cdk.json's context, cdk-nag's packs), with `context` over cdk.json's."""
    app = App(outdir=str(outdir), context={**cdk_json_context(), **(context or {})})
    stack = build(app)
    assembly = app.synth()
    artifact = assembly.get_stack_artifact(stack.artifact_id)
    findings = tuple(
        NagFinding(level=message.level.name.lower(), path=message.id, text=str(message.entry.data))
        for message in artifact.messages if message.level.name.lower() in {"error", "warning"})
    template = Template.from_stack(stack)
    return Synth(template=template, outdir=outdir, template_file=Path(artifact.template_full_path),
                 findings=findings, data=template.to_json())


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


def functions_by_name(synth: Synth, *, with_provider: bool = False) -> dict[str, tuple[str, dict[str, Any]]]:
    """FunctionName -> (logical id, properties) of every Lambda function of ours in the stack (and CDK's custom
    resource provider framework function too when `with_provider`)."""
    found = {}
    for logical_id, resource in synth.of_type("AWS::Lambda::Function").items():
        props = resource["Properties"]
        found[props["FunctionName"]] = (logical_id, props)
    if not with_provider:  # whatever the stack's prefix
        provider_suffix = PROVIDER.removeprefix(NAMES.prefix)
        found = {name: value for name, value in found.items() if not name.endswith(provider_suffix)}
    return found


def role_id_of(props: dict[str, Any]) -> str:
    """The logical id of a function's role (its Role is a GetAtt of the role's Arn)."""
    return str(props["Role"]["Fn::GetAtt"][0])


def statements_of_function(synth: Synth, props: dict[str, Any]) -> list[dict[str, Any]]:
    return policy_statements_of_role(synth, role_id_of(props))


def step_function_ids(synth: Synth) -> dict[str, str]:
    """Registry step -> logical id of its Lambda function."""
    by_name = functions_by_name(synth)
    return {step: by_name[registry.function_name(step)][0] for step in registry.HANDLERS}


def queue_id(synth: Synth, name: str) -> str:
    """The logical id of the queue named `name`."""
    (found,) = [logical_id for logical_id, r in synth.of_type("AWS::SQS::Queue").items()
                if r["Properties"].get("QueueName") == name]
    return found


def only(resources: dict[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    assert len(resources) == 1, f"expected one resource, found {sorted(resources)}"
    return next(iter(resources.items()))


def policy_statements_of_role(synth: Synth, role_logical_id: str) -> list[dict[str, Any]]:
    """Every IAM statement a role holds: its inline policies, the AWS::IAM::Policy resources attached to it and the
    customer managed policies (AWS::IAM::ManagedPolicy of this stack) it carries."""
    role = synth.resources[role_logical_id]["Properties"]
    statements = [s for policy in role.get("Policies", []) for s in policy["PolicyDocument"]["Statement"]]
    for resource in synth.of_type("AWS::IAM::Policy").values():
        props = resource["Properties"]
        if {"Ref": role_logical_id} in props["Roles"]:
            statements.extend(props["PolicyDocument"]["Statement"])
    for arn in role.get("ManagedPolicyArns", []):
        if isinstance(arn, dict) and "Ref" in arn and arn["Ref"] in synth.resources:
            statements.extend(synth.resources[arn["Ref"]]["Properties"]["PolicyDocument"]["Statement"])
    return statements


def aws_managed_policies_of_role(synth: Synth, role_logical_id: str) -> list[str]:
    """The AWS managed policies (not this stack's) a role carries, as text."""
    role = synth.resources[role_logical_id]["Properties"]
    return [join_text(arn) for arn in role.get("ManagedPolicyArns", [])
            if not (isinstance(arn, dict) and "Ref" in arn and arn["Ref"] in synth.resources)]


def actions_of(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def resources_of(statement: dict[str, Any]) -> list[Any]:
    resource = statement["Resource"]
    return list(resource) if isinstance(resource, list) else [resource]
