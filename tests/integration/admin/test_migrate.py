"""The deploy function (admin.migrate.handler, a CloudFormation custom resource): on a fresh database, as a master user
that is not a superuser (as RDS's is not), it makes the roles and runs every migration as paysaga_owner; a second run
changes nothing; Delete does nothing. Secrets come from the AWS emulator; the server checks every password, so each
role logs in with exactly the password its secret holds."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from admin import migrate
from core import limits
from core.aws import client
from core.database_roles import APP_ROLE, FINANCE_ROLE, FUNCTIONS_USER, OWNER_ROLE
from core.settings import Settings
from local.testing.servers import PostgresServer

MASTER = "rds_like_master"
PASSWORDS = {MASTER: "master-pass", OWNER_ROLE: "owner-pass", FUNCTIONS_USER: "functions-pass"}


def _superuser(server: PostgresServer, database: str = "postgres") -> psycopg.Connection[Any]:
    return psycopg.connect(server.url(database, "postgresql"), autocommit=True)


@pytest.fixture
def fresh_database(password_pg: PostgresServer) -> Iterator[str]:
    """An empty database owned by a master user with CREATEROLE and CREATEDB but not SUPERUSER (RDS's master)."""
    name = f"deploy_{uuid.uuid4().hex[:10]}"
    with _superuser(password_pg) as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (MASTER,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN CREATEROLE CREATEDB PASSWORD {}").format(
                sql.Identifier(MASTER), sql.Literal(PASSWORDS[MASTER])))
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(MASTER)))
    yield name
    with _superuser(password_pg) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _secret(name: str, value: dict[str, Any]) -> str:
    settings = Settings(DATABASE_URL="postgresql://unused@127.0.0.1:1/x", REDIS_URL="redis://127.0.0.1:1/0")  # type: ignore[call-arg]
    secrets = client("secretsmanager", settings)
    return str(secrets.create_secret(Name=f"{name}-{uuid.uuid4().hex[:6]}", SecretString=json.dumps(value))["ARN"])


@pytest.fixture
def deploy_env(password_pg: PostgresServer, fresh_database: str, aws_env: str,
               monkeypatch: pytest.MonkeyPatch) -> str:
    """The migration function's environment as the CDK stack gives it: no credentials in DATABASE_URL."""
    host, port = password_pg.host, password_pg.port
    monkeypatch.setenv("DATABASE_URL", f"postgresql://{host}:{port}/{fresh_database}")
    monkeypatch.delenv("REDIS_URL", raising=False)  # the migration function has no Redis
    monkeypatch.setenv("DATABASE_MASTER_SECRET_ARN", _secret("master", {
        "username": MASTER, "password": PASSWORDS[MASTER], "host": host, "port": port, "dbname": fresh_database,
        "engine": "postgres"}))
    monkeypatch.setenv("DATABASE_OWNER_SECRET_ARN", _secret("owner", {
        "username": OWNER_ROLE, "password": PASSWORDS[OWNER_ROLE]}))
    monkeypatch.setenv("DATABASE_SECRET_ARN", _secret("functions", {
        "username": FUNCTIONS_USER, "password": PASSWORDS[FUNCTIONS_USER]}))
    return fresh_database


def _event(request: str, physical_id: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"RequestType": request, "ServiceToken": "arn:aws:lambda:eu-west-1:000000000000:function:x",
                             "ResourceType": "Custom::PaysagaDatabase", "LogicalResourceId": "Database",
                             "ResourceProperties": {}}
    if physical_id is not None:
        event["PhysicalResourceId"] = physical_id
    return event


def _login(server: PostgresServer, database: str, role: str) -> psycopg.Connection[Any]:
    return psycopg.connect(f"postgresql://{role}:{PASSWORDS[role]}@{server.host}:{server.port}/{database}",
                           autocommit=True)


def _state(server: PostgresServer, database: str) -> dict[str, Any]:
    """Everything the deploy function decides: roles, memberships, role settings, owners and privileges."""
    names = [OWNER_ROLE, APP_ROLE, FINANCE_ROLE, FUNCTIONS_USER]
    with _superuser(server, database) as conn:
        roles = conn.execute(
            "SELECT rolname, rolsuper, rolcanlogin, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls,"
            " rolinherit, rolconfig FROM pg_roles WHERE rolname = ANY(%s) ORDER BY rolname", (names,)).fetchall()
        members = conn.execute(
            "SELECT r.rolname, m.rolname FROM pg_auth_members a JOIN pg_roles r ON r.oid = a.roleid"
            " JOIN pg_roles m ON m.oid = a.member WHERE r.rolname = ANY(%s) ORDER BY 1, 2", (names,)).fetchall()
        objects = conn.execute(
            "SELECT c.relname, c.relkind, pg_get_userbyid(c.relowner), c.relacl::text FROM pg_class c"
            " WHERE c.relnamespace = 'public'::regnamespace ORDER BY 1").fetchall()
        schema = conn.execute("SELECT pg_get_userbyid(nspowner), nspacl::text FROM pg_namespace"
                              " WHERE nspname = 'public'").fetchone()
        functions = conn.execute("SELECT proname, pg_get_userbyid(proowner), prosecdef, proacl::text FROM pg_proc"
                                 " WHERE pronamespace = 'public'::regnamespace ORDER BY 1").fetchall()
    return {"roles": roles, "members": members, "objects": objects, "schema": schema, "functions": functions}


def test_create_makes_the_roles_and_migrates_as_the_owner_and_a_second_run_changes_nothing(
        password_pg: PostgresServer, deploy_env: str) -> None:
    database = deploy_env
    answer = migrate.handler(_event("Create"), None)
    assert answer == {"PhysicalResourceId": migrate.PHYSICAL_RESOURCE_ID, "Data": {"revision": migrate.head_revision()}}
    # The newest migration file's revision (numbered in file-name order), not a number this test would have to follow.
    newest = sorted((Path(migrate.__file__).resolve().parents[1] / "migrations" / "versions").glob("*.py"))[-1]
    assert f'revision: str = "{migrate.head_revision()}"' in newest.read_text()

    state = _state(password_pg, database)
    roles = {row[0]: row[1:] for row in state["roles"]}
    # rolsuper, rolcanlogin, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolinherit, rolconfig
    assert roles[OWNER_ROLE][:7] == (False, True, False, False, False, False, True)
    assert roles[APP_ROLE][:2] == (False, False) and roles[FINANCE_ROLE][:2] == (False, False)
    assert roles[FUNCTIONS_USER][:7] == (False, True, False, False, False, False, True)
    assert sorted(roles[FUNCTIONS_USER][7]) == [
        f"idle_in_transaction_session_timeout={limits.DB_IDLE_IN_TRANSACTION_TIMEOUT_MS}",
        f"statement_timeout={limits.DB_STATEMENT_TIMEOUT_MS}"]
    assert (APP_ROLE, FUNCTIONS_USER) in state["members"]
    assert [m for m in state["members"] if m[1] == FUNCTIONS_USER] == [(APP_ROLE, FUNCTIONS_USER)]
    # The owner owns the schema and everything the migrations made in it; nobody else owns anything there.
    assert state["schema"][0] == OWNER_ROLE
    assert {owner for _, _, owner, _ in state["objects"]} == {OWNER_ROLE}
    assert {owner for _, owner, _, _ in state["functions"]} == {OWNER_ROLE}
    assert {"payments", "ledger_entries", "alembic_version", "v_journal"} <= {name for name, *_ in state["objects"]}

    # Each role logs in with exactly its secret's password (the server checks it).
    with _login(password_pg, database, FUNCTIONS_USER) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == (f"{limits.DB_STATEMENT_TIMEOUT_MS // 1000}s",)
        assert conn.execute("SELECT count(*) FROM payments").fetchone() == (0,)
    with _login(password_pg, database, OWNER_ROLE) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone() == (migrate.head_revision(),)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(f"postgresql://{FUNCTIONS_USER}:wrong@{password_pg.host}:{password_pg.port}/{database}")

    again = migrate.handler(_event("Update", answer["PhysicalResourceId"]), None)
    assert again == answer
    assert _state(password_pg, database) == state


def test_delete_leaves_the_database_and_its_roles(password_pg: PostgresServer, deploy_env: str) -> None:
    migrate.handler(_event("Create"), None)
    before = _state(password_pg, deploy_env)
    assert migrate.handler(_event("Delete", "paysaga-database-schema"), None) == {
        "PhysicalResourceId": "paysaga-database-schema"}
    assert _state(password_pg, deploy_env) == before


def test_a_missing_or_mismatched_secret_is_named(deploy_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_OWNER_SECRET_ARN")
    with pytest.raises(ValueError, match="DATABASE_OWNER_SECRET_ARN is not set"):
        migrate.handler(_event("Create"), None)
    monkeypatch.setenv("DATABASE_OWNER_SECRET_ARN", _secret("owner", {"username": "someone", "password": "x"}))
    with pytest.raises(ValueError, match=f"DATABASE_OWNER_SECRET_ARN: the secret's username must be {OWNER_ROLE}"):
        migrate.handler(_event("Create"), None)
    with pytest.raises(ValueError, match="RequestType"):
        migrate.handler({"RequestType": "Upsert"}, None)


def test_paysaga_migrate_runs_as_the_owner_of_its_secret(
        password_pg: PostgresServer, deploy_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from local.cli import app

    database = deploy_env
    master = f"postgresql://{MASTER}:{PASSWORDS[MASTER]}@{password_pg.host}:{password_pg.port}/{database}"
    migrate.prepare_roles(master, owner_password=PASSWORDS[OWNER_ROLE], functions_password=PASSWORDS[FUNCTIONS_USER])
    monkeypatch.setenv("PAYSAGA_STACK_DIR", "/nonexistent-paysaga-stack")
    result = CliRunner().invoke(app, ["migrate"])
    assert result.exit_code == 0, result.output
    assert "migrations applied" in result.output
    state = _state(password_pg, database)
    assert {owner for _, _, owner, _ in state["objects"]} == {OWNER_ROLE}
