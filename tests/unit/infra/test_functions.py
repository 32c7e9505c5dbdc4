"""One Lambda function per registry entry plus the start, webhook and sync functions, configured the way
core/settings.py reads it."""

from __future__ import annotations

import re

from core import limits
from infra.code_asset import RUNTIME
from infra.environment import DATABASE_SECRET_ARN
from steps import registry
from tests.unit.infra.support import START, SYNC, WEBHOOKS, Synth, functions_by_name, settings_env_names

# What a function cannot start without on AWS (settings has no default for the first two; the rest name resources).
REQUIRED = {"DATABASE_URL", "REDIS_URL", "IDEMPOTENCY_TABLE", "WORKER_SLOTS_TABLE", "NOTIFICATIONS_QUEUE",
            "NOTIFICATIONS_DLQ", "NOTIFICATIONS_TOPIC", "EVENT_BUS", "PAYMENT_GATEWAY"}


def test_one_function_per_registry_entry_plus_start_webhooks_and_sync(synth: Synth) -> None:
    by_name = functions_by_name(synth)
    expected = {registry.function_name(step) for step in registry.HANDLERS} | {START, WEBHOOKS, SYNC}
    assert set(by_name) == expected
    for step, target in registry.HANDLERS.items():
        _, props = by_name[registry.function_name(step)]
        module, function = target.split(":")
        assert props["Handler"] == f"{module}.{function}"
        assert props["Runtime"] == RUNTIME.name == "python3.12"
        assert 1 <= props["ReservedConcurrentExecutions"] <= 100
        assert props["TracingConfig"] == {"Mode": "Active"}


def test_the_start_function_runs_the_start_handler(synth: Synth) -> None:
    # Its timeout and the limits in its environment: tests/unit/infra/test_limits.py.
    _, props = functions_by_name(synth)[START]
    assert props["Handler"] == "saga.handler.handler"
    assert props["Runtime"] == "python3.12"


def test_reserved_concurrency_leaves_the_account_pool_its_unreserved_minimum(synth: Synth) -> None:
    reserved = sum(props["ReservedConcurrentExecutions"] for _, props in functions_by_name(synth).values())
    # Default account concurrency is 1000, of which 100 must stay unreserved.
    assert reserved <= 900


def test_every_function_gets_the_variable_names_settings_reads(synth: Synth) -> None:
    readable = settings_env_names()
    assert readable >= REQUIRED, "a name this test requires is no longer read by core/settings.py"
    for name, (_, props) in functions_by_name(synth).items():
        variables = set(props["Environment"]["Variables"])
        assert variables >= REQUIRED, f"{name} lacks {sorted(REQUIRED - variables)}"
        # Exactly settings' names; the secret ARN is the one pending name (the report describes the settings change).
        assert variables - readable <= {DATABASE_SECRET_ARN}, f"{name} gets unknown {sorted(variables - readable)}"
        assert "AWS_REGION" not in variables  # reserved: Lambda sets it


def test_the_webhook_and_sync_functions_run_their_handlers_on_a_schedule(synth: Synth) -> None:
    by_name = functions_by_name(synth)
    assert by_name[WEBHOOKS][1]["Handler"] == "saga.handler.handler"
    sync_id, sync_props = by_name[SYNC]
    assert sync_props["Handler"] == "saga.sync.handler"
    (rule,) = [r["Properties"] for r in synth.of_type("AWS::Events::Rule").values()
               if sync_id in str(r["Properties"].get("Targets"))]
    assert rule["ScheduleExpression"] == f"rate({limits.SYNC_INTERVAL_MS // 60_000} minute)"


def test_only_the_functions_that_call_gateways_read_the_gateway_secret(synth: Synth) -> None:
    readers = {name for name, (_, props) in functions_by_name(synth).items()
               if "GATEWAY_SECRETS_ARN" in props["Environment"]["Variables"]}
    assert readers == {registry.function_name(step) for step in registry.HANDLERS} | {WEBHOOKS, SYNC}


def test_only_the_start_and_sync_functions_know_the_state_machine(synth: Synth) -> None:
    (machine_id,) = synth.of_type("AWS::StepFunctions::StateMachine")
    for name, (_, props) in functions_by_name(synth).items():
        variables = props["Environment"]["Variables"]
        if name in (START, SYNC):
            assert variables["STATE_MACHINE_ARN"] == {"Ref": machine_id}
        else:
            assert "STATE_MACHINE_ARN" not in variables


def test_functions_run_in_the_vpc_with_the_data_stores(synth: Synth) -> None:
    for name, (_, props) in functions_by_name(synth).items():
        vpc = props.get("VpcConfig")
        assert vpc and vpc["SubnetIds"] and vpc["SecurityGroupIds"], f"{name} is not in the VPC"


def test_the_code_asset_holds_the_runtime_packages_only(synth: Synth) -> None:
    keys = {props["Code"]["S3Key"] for _, props in functions_by_name(synth).values()}
    assert len(keys) == 1, "every function shares one code asset"
    root = synth.asset(keys.pop())
    top = {path.name for path in root.iterdir()}
    assert top == {"core", "saga", "steps", "ledger", "store"}, "the local tooling (local/) never ships"
    assert (root / "saga" / "handler.py").is_file()
    # Nothing in the asset reaches for the local tooling or its dependencies (they are not in the layer).
    local_only = re.compile(r"^\s*(from|import)\s+(local|typer|rich|alembic|starlette|uvicorn|pyarrow|jsonpath_ng)\b",
                            re.MULTILINE)
    reaching = [str(p.relative_to(root)) for p in root.rglob("*.py") if local_only.search(p.read_text())]
    assert reaching == [], reaching
    for step, target in registry.HANDLERS.items():
        module = target.split(":")[0]
        assert (root / (module.replace(".", "/") + ".py")).is_file(), f"{step}'s module {module} is missing"
    leftovers = [p for p in root.rglob("*") if p.name in {"tests", "__pycache__", "node_modules"} or p.suffix == ".pyc"]
    assert leftovers == []
