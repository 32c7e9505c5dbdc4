"""One Lambda function per registry entry plus the start, webhook and sync functions, the notifications' three and the
console's two, configured the way core/settings.py reads it."""

from __future__ import annotations

import importlib.util
import re
import zipfile
from pathlib import Path
from types import ModuleType

from admin.settings import AdminSettings
from core import limits, telemetry_names
from infra.code_asset import ARCHITECTURE, RUNTIME
from infra.config import config_from_context
from infra.environment import STATE_MACHINE_ARN_VARIABLES
from infra.functions import STEP_MEMORY_MB, registry_step
from infra.paths import MIGRATION_FILES, REPO_ROOT, RUNTIME_PACKAGES
from steps import registry
from steps.registry import Workflow
from tests.unit.infra.support import (
    CONSOLE,
    CONSOLE_AUTHORIZER,
    CONSOLE_FUNCTIONS,
    MERCHANT_ADMIN,
    MIGRATIONS,
    NOTIFICATION_FUNCTIONS,
    NOTIFICATIONS_CONSUMER,
    OUTBOX_RELAY,
    RECONCILIATION,
    RUNTIME_FUNCTIONS,
    START,
    SYNC,
    WEBHOOK_DELIVERY,
    WEBHOOKS,
    Synth,
    cdk_json_context,
    functions_by_name,
    settings_env_names,
)
from tests.unit.infra.test_workflow import machines

# What a function cannot start without on AWS (settings has no default for the first two; the rest name resources).
REQUIRED = {"DATABASE_URL", "REDIS_URL", "IDEMPOTENCY_TABLE", "WORKER_SLOTS_TABLE", "NOTIFICATIONS_QUEUE",
            "NOTIFICATIONS_DLQ", "NOTIFICATIONS_TOPIC", "EVENT_BUS", "PAYMENT_GATEWAY"}


def _build_layer_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_layer", REPO_ROOT / "scripts" / "build_layer.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_one_function_per_registry_entry_plus_start_webhooks_sync_and_the_admin_ones(synth: Synth) -> None:
    by_name = functions_by_name(synth)
    assert ({registry.function_name(step) for step in registry.HANDLERS} | {START, WEBHOOKS, SYNC, RECONCILIATION}
            | NOTIFICATION_FUNCTIONS | CONSOLE_FUNCTIONS == RUNTIME_FUNCTIONS)
    assert set(by_name) == RUNTIME_FUNCTIONS | {MIGRATIONS, MERCHANT_ADMIN}
    for step, target in registry.HANDLERS.items():
        _, props = by_name[registry.function_name(step)]
        module, function = target.split(":")
        assert props["Handler"] == f"{module}.{function}"
        assert 1 <= props["ReservedConcurrentExecutions"] <= 100
    assert by_name[MIGRATIONS][1]["Handler"] == "admin.migrate.handler"
    assert by_name[MERCHANT_ADMIN][1]["Handler"] == "admin.merchants.handler"


def test_every_function_is_arm64_on_the_newest_python_the_layer_is_built_for_and_traced(synth: Synth) -> None:
    script = _build_layer_script()
    assert RUNTIME.name == f"python{script.LAMBDA_PYTHON}" == "python3.14"
    assert ARCHITECTURE.name == "arm64" and script.LAMBDA_PLATFORM.endswith("_aarch64")
    (layer,) = synth.of_type("AWS::Lambda::LayerVersion").values()
    assert layer["Properties"]["CompatibleRuntimes"] == [RUNTIME.name]
    assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]
    for name, (_, props) in functions_by_name(synth).items():
        assert props["Runtime"] == RUNTIME.name, name
        assert props["Architectures"] == ["arm64"], name
        assert props["TracingConfig"] == {"Mode": "Active"}, name


def test_the_start_function_runs_the_start_handler(synth: Synth) -> None:
    # Its timeout and the limits in its environment: tests/unit/infra/test_limits.py.
    _, props = functions_by_name(synth)[START]
    assert props["Handler"] == "saga.handler.handler"


def test_every_function_names_its_powertools_service_and_the_metrics_namespace(synth: Synth) -> None:
    expected = {START: telemetry_names.SERVICE_START, WEBHOOKS: telemetry_names.SERVICE_WEBHOOKS,
                SYNC: telemetry_names.SERVICE_SYNC, MIGRATIONS: telemetry_names.SERVICE_ADMIN,
                MERCHANT_ADMIN: telemetry_names.SERVICE_ADMIN,
                NOTIFICATIONS_CONSUMER: telemetry_names.SERVICE_NOTIFICATIONS,
                OUTBOX_RELAY: telemetry_names.SERVICE_NOTIFICATIONS,
                WEBHOOK_DELIVERY: telemetry_names.SERVICE_WEBHOOK_DELIVERY,
                RECONCILIATION: telemetry_names.SERVICE_RECONCILIATION,
                CONSOLE: telemetry_names.SERVICE_CONSOLE, CONSOLE_AUTHORIZER: telemetry_names.SERVICE_CONSOLE}
    expected |= {registry.function_name(step): telemetry_names.SERVICE_STEPS for step in registry.HANDLERS}
    for name, (_, props) in functions_by_name(synth).items():
        variables = props["Environment"]["Variables"]
        assert variables["POWERTOOLS_SERVICE_NAME"] == expected[name], name
        assert variables[telemetry_names.METRICS_NAMESPACE_ENV] == telemetry_names.NAMESPACE, name


def test_reserved_concurrency_leaves_the_account_pool_its_unreserved_minimum(synth: Synth) -> None:
    reserved = sum(props["ReservedConcurrentExecutions"] for _, props in functions_by_name(synth).values())
    # Default account concurrency is 1000, of which 100 must stay unreserved.
    assert reserved <= 900


def test_every_function_gets_the_variable_names_settings_reads(synth: Synth) -> None:
    readable = settings_env_names()
    assert readable >= REQUIRED, "a name this test requires is no longer read by core/settings.py"
    admin_readable = {str(f.validation_alias) for f in AdminSettings.model_fields.values()}
    powertools = {"POWERTOOLS_SERVICE_NAME", telemetry_names.METRICS_NAMESPACE_ENV}
    for name, (_, props) in functions_by_name(synth).items():
        variables = set(props["Environment"]["Variables"])
        assert variables >= REQUIRED, f"{name} lacks {sorted(REQUIRED - variables)}"
        # Exactly settings' names (the admin functions': admin/settings.py's) and Powertools' own.
        known = (admin_readable if name in (MIGRATIONS, MERCHANT_ADMIN) else readable) | powertools
        assert variables <= known, f"{name} gets unknown {sorted(variables - known)}"
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
    # The reconciliation's hourly run fetches Stripe's balance transactions.
    assert readers == {registry.function_name(step) for step in registry.HANDLERS} | {WEBHOOKS, SYNC, RECONCILIATION}


def test_only_the_start_webhook_sync_and_console_functions_know_the_state_machines(synth: Synth) -> None:
    # The webhook function runs saga.handler too, whose services name the saga's state machine (it starts none:
    # test_permissions.py); the operations' machines only the start and sync functions, which start them, and the
    # console, which replays an execution of any of them.
    found = machines(synth)
    for name, (_, props) in functions_by_name(synth).items():
        variables = props["Environment"]["Variables"]
        for workflow, variable in STATE_MACHINE_ARN_VARIABLES.items():
            knows = (START, WEBHOOKS, SYNC, CONSOLE) if workflow is Workflow.PAYMENT else (START, SYNC, CONSOLE)
            if name in knows:
                assert variables[variable] == {"Ref": found[workflow][0]}, (name, variable)
            else:
                assert variable not in variables, (name, variable)


def test_every_step_function_is_sized_by_its_role_the_operations_like_the_sagas(synth: Synth) -> None:
    config = config_from_context(cdk_json_context().get)
    by_name = functions_by_name(synth)
    assert set(registry.HANDLERS) == set(registry.STEPS) | set(registry.OPERATION_STEPS)
    for step in registry.HANDLERS:
        _, props = by_name[registry.function_name(step)]
        role = registry_step(step).role
        expected = config.step_concurrency if role is registry.Role.FORWARD else config.compensation_concurrency
        assert props["ReservedConcurrentExecutions"] == expected, step
        assert props["MemorySize"] == STEP_MEMORY_MB, step
        assert props["Timeout"] == limits.STEP_LAMBDA_TIMEOUT_S, step


def test_functions_run_in_the_vpc_with_the_data_stores(synth: Synth) -> None:
    for name, (_, props) in functions_by_name(synth).items():
        vpc = props.get("VpcConfig")
        assert vpc and vpc["SubnetIds"] and vpc["SecurityGroupIds"], f"{name} is not in the VPC"


def _staged(synth: Synth, props: dict[str, object]) -> Path:
    code = props["Code"]
    assert isinstance(code, dict)
    return synth.asset(code["S3Key"])


def test_the_code_asset_holds_the_runtime_packages_only(synth: Synth) -> None:
    by_name = functions_by_name(synth)
    keys = {props["Code"]["S3Key"] for name, (_, props) in by_name.items() if name != MIGRATIONS}
    assert len(keys) == 1, "every function but the migration one shares one code asset"
    root = synth.asset(keys.pop())
    top = {path.name for path in root.iterdir()}
    assert top == set(RUNTIME_PACKAGES) == {"core", "saga", "steps", "ledger", "store", "admin"}, (
        "the local tooling (local/), tests, the venv never ship")
    assert (root / "saga" / "handler.py").is_file()
    assert (root / "admin" / "merchants.py").is_file()
    # Nothing in the asset reaches for the local tooling or its dependencies (they are not in the layer).
    local_only = re.compile(r"^\s*(from|import)\s+(local|typer|rich|starlette|uvicorn|pyarrow|jsonpath_ng)\b",
                            re.MULTILINE)
    reaching = [str(p.relative_to(root)) for p in root.rglob("*.py") if local_only.search(p.read_text())]
    assert reaching == [], reaching
    for step, target in registry.HANDLERS.items():
        module = target.split(":")[0]
        assert (root / (module.replace(".", "/") + ".py")).is_file(), f"{step}'s module {module} is missing"
    leftovers = [p for p in root.rglob("*") if p.name in {"tests", "__pycache__", "node_modules", ".venv"}
                 or p.suffix == ".pyc"]
    assert leftovers == []


def test_the_migration_asset_adds_alembic_and_the_migrations_at_its_root(synth: Synth) -> None:
    root = _staged(synth, functions_by_name(synth)[MIGRATIONS][1])
    top = {path.name for path in root.iterdir()}
    assert top == set(RUNTIME_PACKAGES) | set(MIGRATION_FILES)
    assert (root / "alembic.ini").read_text() == (REPO_ROOT / "alembic.ini").read_text()
    shipped = sorted(p.name for p in (root / "migrations" / "versions").glob("*.py"))
    assert shipped == sorted(p.name for p in (REPO_ROOT / "migrations" / "versions").glob("*.py")) != []
    assert (root / "admin" / "migrate.py").is_file() and (root / "migrations" / "env.py").is_file()
    assert not [p for p in root.rglob("*") if p.name in {"tests", "local", "__pycache__", ".venv"}]


def test_the_layer_is_the_zip_make_builds_and_stays_well_under_lambdas_limit(synth: Synth) -> None:
    script = _build_layer_script()
    assert script.LAYER_BUDGET_BYTES <= script.LAMBDA_UNZIPPED_LIMIT_BYTES // 2
    layer_zip = REPO_ROOT / cdk_json_context()["dependencies_layer_zip"]
    unzipped = script.unzipped_size(layer_zip)
    assert 0 < unzipped <= script.LAYER_BUDGET_BYTES, f"the layer unzips to {unzipped / 1e6:.1f} MB"
    (layer,) = synth.of_type("AWS::Lambda::LayerVersion").values()
    staged = synth.asset(layer["Properties"]["Content"]["S3Key"])
    assert staged.read_bytes() == layer_zip.read_bytes(), "the deployed layer is the zip `make layer` built"
    with zipfile.ZipFile(layer_zip) as built:
        names = built.namelist()
    assert all(name.startswith("python/") for name in names)
    # What the functions import from it, built for arm64 (a compiled extension of the platform's ABI).
    packages = {name.split("/")[1] for name in names}
    assert {"pydantic", "sqlalchemy", "psycopg", "redis", "aws_lambda_powertools", "alembic"} <= packages
    assert any("aarch64" in name and name.endswith(".so") for name in names if name.startswith("python/pydantic_core/"))
    code = [p for p in _staged(synth, functions_by_name(synth)[MIGRATIONS][1]).rglob("*") if p.is_file()]
    assert unzipped + sum(p.stat().st_size for p in code) < script.LAMBDA_UNZIPPED_LIMIT_BYTES
