"""A migration freezes the names it writes into CHECK constraints and the roles it grants to; while it is the latest to
write them, they must be the code's (alembic's autogenerate compares neither CHECK texts nor roles, so this does)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from core.database_roles import APP_ROLE, FINANCE_ROLE
from core.gateways import GATEWAY_NAMES
from ledger.reconciliation.schema import DISCREPANCY_KINDS, DISCREPANCY_STATUSES, LINE_TYPES, RUN_SCHEDULES
from ledger.schema import ACCOUNT_KINDS, TRANSACTION_KINDS
from store.lifecycle import PAYMENT_STATUSES
from store.schema import (
    EXPIRY_ACTIONS,
    OPERATION_KINDS,
    OPERATION_STATUSES,
    OPERATOR_ROLES,
    OPERATOR_USERNAME_CHECK,
    REPLAY_AUDIT_ACTIONS,
    WEBHOOK_DELIVERY_STATUSES,
    sql_in,
)

MIGRATIONS = Path(__file__).resolve().parents[3] / "migrations" / "versions"


def _migration(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, MIGRATIONS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_gateways_migration_checks_the_code_s_gateways_and_ledger_kinds() -> None:
    gateways = _migration("20261202_0004_gateways")
    assert sql_in("gateway", GATEWAY_NAMES) == gateways._GATEWAYS
    assert sql_in("kind", ACCOUNT_KINDS[:len(ACCOUNT_KINDS) - 3]) == gateways._ACCOUNT_KINDS  # 0008 added 3
    assert sql_in("kind", TRANSACTION_KINDS[:len(TRANSACTION_KINDS) - 4]) == gateways._TX_KINDS  # 0007 3, 0008 1


def test_the_operations_migration_checks_the_code_s_kinds_statuses_and_grants() -> None:
    operations = _migration("20261203_0007_operations")
    assert operations.APP_ROLE == APP_ROLE
    assert sql_in("kind", TRANSACTION_KINDS[:-1]) == operations._TX_KINDS  # 0008 added settlement
    assert sql_in("kind", OPERATION_KINDS) == operations._KINDS
    assert sql_in("status", OPERATION_STATUSES) == operations._STATUSES
    assert sql_in("status", tuple(str(s) for s in PAYMENT_STATUSES)) == operations._PAYMENT_STATUSES
    assert sql_in("expiring_authorization_action", EXPIRY_ACTIONS) == operations._EXPIRY_ACTIONS


def test_the_roles_migrations_grant_to_the_code_s_roles() -> None:
    rules, roles = _migration("20261121_0002_rules"), _migration("20261203_0005_roles")
    assert rules.FINANCE_ROLE == FINANCE_ROLE
    assert f"rolname = '{FINANCE_ROLE}'" in rules.CREATE_ROLE and f"EXISTS {FINANCE_ROLE};" in rules.DROP_ROLE
    assert roles.APP_ROLE == APP_ROLE
    assert f"rolname = '{APP_ROLE}'" in roles.CREATE_ROLE and f"CREATE ROLE {APP_ROLE} NOLOGIN" in roles.CREATE_ROLE
    assert f"DROP ROLE IF EXISTS {APP_ROLE};" in roles.DROP_ROLE


def test_the_webhooks_migration_grants_to_the_app_role_and_checks_the_code_s_statuses() -> None:
    webhooks = _migration("20261203_0006_webhooks")
    assert webhooks.APP_ROLE == APP_ROLE
    assert sql_in("status", WEBHOOK_DELIVERY_STATUSES) == webhooks._STATUSES


def test_the_reconciliation_migration_checks_the_code_s_kinds_and_grants() -> None:
    reconciliation = _migration("20261203_0008_reconciliation")
    assert (reconciliation.APP_ROLE, reconciliation.FINANCE_ROLE) == (APP_ROLE, FINANCE_ROLE)
    assert sql_in("gateway", GATEWAY_NAMES) == reconciliation._GATEWAYS
    assert sql_in("kind", ACCOUNT_KINDS) == reconciliation._ACCOUNT_KINDS
    assert sql_in("kind", TRANSACTION_KINDS) == reconciliation._TX_KINDS
    assert sql_in("type", LINE_TYPES) == reconciliation._LINE_TYPES
    assert sql_in("kind", DISCREPANCY_KINDS) == reconciliation._DISCREPANCY_KINDS
    assert sql_in("status", DISCREPANCY_STATUSES) == reconciliation._DISCREPANCY_STATUSES
    assert sql_in("schedule", RUN_SCHEDULES) == reconciliation._RUN_SCHEDULES


def test_the_console_migration_checks_the_code_s_roles_actions_and_names() -> None:
    console = _migration("20261203_0009_console")
    assert console.APP_ROLE == APP_ROLE
    assert sql_in("role", OPERATOR_ROLES) == console._ROLES
    assert sql_in("action", REPLAY_AUDIT_ACTIONS) == console._ACTIONS
    assert OPERATOR_USERNAME_CHECK == console._USERNAME
