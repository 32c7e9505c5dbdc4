"""The migration custom resource (roles, then alembic upgrade head, before anything takes traffic) and the merchant
administration function."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infra import admin
from infra.admin import MIGRATIONS_HASH_PROPERTY, MIGRATIONS_RESOURCE_TYPE, migrations_hash
from steps.registry import Workflow
from tests.unit.infra.support import (
    MERCHANT_ADMIN,
    MIGRATIONS,
    PROVIDER,
    RUNTIME_FUNCTIONS,
    Synth,
    functions_by_name,
    join_text,
    only,
)


def _depends_on(synth: Synth, logical_id: str) -> list[str]:
    depends = synth.resources[logical_id].get("DependsOn", [])
    return [depends] if isinstance(depends, str) else list(depends)


def test_the_migration_function_runs_in_the_vpc_long_enough_for_alembic(synth: Synth) -> None:
    _, props = functions_by_name(synth)[MIGRATIONS]
    assert props["Handler"] == "admin.migrate.handler"
    assert props["Timeout"] >= 300
    assert props["VpcConfig"]["SubnetIds"]
    assert props["ReservedConcurrentExecutions"] == 1


def test_the_custom_resource_carries_the_migrations_hash_behind_the_provider(synth: Synth) -> None:
    schema_id, schema = only({k: r for k, r in synth.resources.items() if r["Type"] == MIGRATIONS_RESOURCE_TYPE})
    provider_id, _ = functions_by_name(synth, with_provider=True)[PROVIDER]
    assert schema["Properties"]["ServiceToken"] == {"Fn::GetAtt": [provider_id, "Arn"]}
    assert schema["Properties"][MIGRATIONS_HASH_PROPERTY] == migrations_hash()
    provider = synth.resources[provider_id]["Properties"]
    migrations_id = functions_by_name(synth)[MIGRATIONS][0]
    assert migrations_id in join_text(provider["Environment"]["Variables"])
    # The database and its proxy are up before the migrations run.
    depends = _depends_on(synth, schema_id)
    for cfn_type in ("AWS::RDS::DBCluster", "AWS::RDS::DBProxy", "AWS::RDS::DBProxyTargetGroup"):
        (logical_id,) = synth.of_type(cfn_type)
        assert logical_id in depends, cfn_type
    # ... and the function in the VPC can reach Secrets Manager (its endpoint, or the NAT gateways' routes).
    for cfn_type in ("AWS::EC2::VPCEndpoint", "AWS::EC2::NatGateway"):
        assert set(synth.of_type(cfn_type)) <= set(depends), cfn_type


def test_migrations_come_before_anything_that_takes_traffic(synth: Synth) -> None:
    schema_id, _ = only({k: r for k, r in synth.resources.items() if r["Type"] == MIGRATIONS_RESOURCE_TYPE})
    functions = functions_by_name(synth)
    dependents = [functions[name][0] for name in RUNTIME_FUNCTIONS]
    dependents += list(synth.of_type("AWS::StepFunctions::StateMachine"))
    dependents += list(synth.of_type("AWS::ApiGateway::Stage"))
    dependents += [k for k, r in synth.of_type("AWS::Events::Rule").items()
                   if functions[next(n for n in RUNTIME_FUNCTIONS if n.endswith("-PaymentSync"))][0]
                   in str(r["Properties"]["Targets"])]
    # Every workflow's state machine (the saga's and the operations'), the stage, the sync's schedule.
    assert len(dependents) == len(RUNTIME_FUNCTIONS) + len(Workflow) + 2
    for logical_id in dependents:
        assert schema_id in _depends_on(synth, logical_id), f"{logical_id} may take traffic before the migrations"


def test_a_new_migration_changes_the_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for entry in admin.HASHED_ENTRIES:
        source = admin.REPO_ROOT / entry
        target = tmp_path / entry
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)
    monkeypatch.setattr(admin, "REPO_ROOT", tmp_path)
    before = migrations_hash()
    assert before == migrations_hash(), "the hash is stable"
    (tmp_path / "migrations" / "versions" / "20991231_9999_next.py").write_text("revision = '9999'\n")
    assert migrations_hash() != before


def test_merchant_administration_is_a_function_without_a_route(synth: Synth) -> None:
    admin_id, props = functions_by_name(synth)[MERCHANT_ADMIN]
    assert props["Handler"] == "admin.merchants.handler"
    routed = [p for p in synth.of_type("AWS::Lambda::Permission").values()
              if admin_id in str(p["Properties"]["FunctionName"])]
    assert routed == [], "only IAM principals allowed lambda:InvokeFunction may call it"
