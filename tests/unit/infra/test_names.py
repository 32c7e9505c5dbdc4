"""Two stacks with different prefixes share an account and region: no physical name of one is the other's."""

from __future__ import annotations

from typing import Any

from infra.names import ResourceNames
from steps import registry
from tests.unit.infra.conftest import OTHER_PREFIX
from tests.unit.infra.support import Synth, join_text

# Property names that name something within its parent only (a stage of its API, a metric of its namespace, the
# database inside its cluster...), not an account-wide physical name.
NOT_ACCOUNT_WIDE = {"StageName", "DatabaseName", "MetricName", "TargetGroupName", "AttributeName", "IndexName",
                    "MetricNamespace", "Namespace", "FilterName", "PolicyName", "ServiceName", "LogStreamName"}


def _physical_names(synth: Synth) -> dict[str, str]:
    """'<value>' -> where it is, for every literal name-like property (a top-level *Name, *Identifier or *Id that is
    plain text, and the hosted rotation functions' names)."""
    found: dict[str, str] = {}

    def add(value: Any, where: str) -> None:
        if isinstance(value, dict) and "Fn::Join" in value:
            text = join_text(value)
            if '{"Ref"' not in text.replace('{"Ref": "AWS::', "") and "Fn::GetAtt" not in text:
                found[text] = where
        elif isinstance(value, str):
            found[value] = where

    for logical_id, resource in synth.resources.items():
        props = resource.get("Properties", {})
        for key, value in props.items():
            if key in NOT_ACCOUNT_WIDE or not key.endswith(("Name", "Identifier", "GroupId", "Id")):
                continue
            add(value, f"{logical_id}.{key}")
        hosted = props.get("HostedRotationLambda")
        if hosted:
            add(hosted["RotationLambdaName"], f"{logical_id}.HostedRotationLambda")
    return found


def test_two_prefixes_share_no_physical_name(synth: Synth, other: Synth) -> None:
    ours, theirs = _physical_names(synth), _physical_names(other)
    assert len(ours) >= 40, sorted(ours)
    shared = {name: (ours[name], theirs[name]) for name in set(ours) & set(theirs)}
    assert shared == {}


def test_every_physical_name_starts_with_the_prefix(synth: Synth, other: Synth) -> None:
    for prefixed, prefix in ((synth, registry.FUNCTION_NAME_PREFIX), (other, OTHER_PREFIX)):
        stray = {name: where for name, where in _physical_names(prefixed).items() if prefix not in name}
        assert stray == {}, stray


def test_the_stack_name_comes_from_the_prefix(synth: Synth, other: Synth) -> None:
    assert ResourceNames("paysaga").stack == "Paysaga"
    assert ResourceNames(OTHER_PREFIX).stack == "OtherStage"
    manifest_names = {s.template_file.name for s in (synth, other)}
    assert manifest_names == {"Paysaga.template.json"}  # the construct id; the deployed name is the stack name
