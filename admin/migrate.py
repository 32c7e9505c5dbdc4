"""The database's roles and migrations, at deploy time (a CloudFormation custom resource) and locally.

On AWS, before the functions take traffic, `handler` runs in the VPC:
1. `prepare_roles`, as the cluster's master user: the login role paysaga_owner (owns schema public and so every
   table, view and function the migrations make; not a superuser), the NOLOGIN groups paysaga_app and
   paysaga_finance, and the functions' login user paysaga_functions (a member of paysaga_app) with its timeouts set on
   the role (RDS Proxy refuses them as startup options);
2. `upgrade`, as paysaga_owner: `alembic upgrade head`.

alembic.ini and migrations/ are read from the directory that holds the packages (the repository root; the Lambda
asset's root).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from aws_lambda_powertools import Logger
from psycopg import sql
from sqlalchemy import create_engine, make_url, pool

from admin.settings import AdminSettings, load_admin_settings
from core import limits
from core.database_roles import APP_ROLE, FINANCE_ROLE, FUNCTIONS_USER, OWNER_ROLE
from core.db import connect_args_for, read_credentials, with_credentials

__all__ = ["PROJECT_ROOT", "alembic_config", "current_revision", "downgrade", "functions_url", "handler",
           "head_revision", "migration_url", "prepare_functions_user", "prepare_roles", "upgrade"]

logger = Logger(service="paysaga-migrate")

# The folder holding admin/, core/, ... and alembic.ini, migrations/ (the repository; /var/task on Lambda).
PROJECT_ROOT: Final[Path] = Path(__file__).resolve().parents[1]
ALEMBIC_INI: Final[Path] = PROJECT_ROOT / "alembic.ini"
MIGRATIONS_DIR: Final[Path] = PROJECT_ROOT / "migrations"
# The custom resource's physical id: one per stack's database, stable across updates (a new id would make
# CloudFormation delete the "old" resource).
PHYSICAL_RESOURCE_ID: Final[str] = "paysaga-database-schema"
# Deploys of two stacks on one cluster, or a retried custom resource, set the roles up one at a time.
_ROLES_LOCK: Final[str] = "paysaga.prepare_roles"


# ---- alembic ---------------------------------------------------------------------------------------------------


def alembic_config(url: str | None = None) -> Config:
    """alembic.ini with the migrations folder found from here (whatever the working directory) and this URL."""
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if url is not None:
        config.set_main_option("sqlalchemy.url", _with_root_cert(url).replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """`alembic upgrade` on this URL (on AWS paysaga_owner's)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "migrations/versions holds at least one revision"
    return head


def current_revision(url: str) -> str | None:
    """The revision the database is at (None before the first migration)."""
    engine = create_engine(_sqlalchemy(_with_root_cert(url)), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


# ---- roles -----------------------------------------------------------------------------------------------------


def prepare_roles(master_url: str, owner_password: str, functions_password: str,
                  statement_timeout_ms: int = limits.DB_STATEMENT_TIMEOUT_MS,
                  idle_in_transaction_timeout_ms: int = limits.DB_IDLE_IN_TRANSACTION_TIMEOUT_MS) -> None:
    """Create or update the roles the migrations and the functions use, as the cluster's master user, in one
    transaction. Idempotent: a second run changes nothing but re-setting the same passwords.

    - paysaga_owner: LOGIN, not superuser, no CREATEROLE/CREATEDB; owns schema public (the migrations run as it, so
      it owns what they make; it needs CREATE on the database to be given the schema).
    - paysaga_app, paysaga_finance: NOLOGIN groups (the migrations grant to them; made here because the owner may
      not create roles).
    - paysaga_functions: LOGIN, IN ROLE paysaga_app, with statement_timeout and idle_in_transaction_session_timeout
      set on the role.
    """
    assert owner_password and functions_password, "both passwords are required"
    with _connect(master_url) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_ROLES_LOCK,))
        database = conn.execute("SELECT current_database()").fetchone()
        assert database is not None
        owner = sql.Identifier(OWNER_ROLE)
        _login_role(conn, OWNER_ROLE, owner_password, in_role=None)
        _groups(conn)
        _functions_user(conn, functions_password, statement_timeout_ms, idle_in_transaction_timeout_ms)
        # The schema and what the migrations make in it belong to the owner. Giving it the schema takes being able
        # to act as it (the master is not a superuser on RDS) and its CREATE on the database.
        conn.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(owner))
        conn.execute(sql.SQL("GRANT CREATE, CONNECT ON DATABASE {} TO {}").format(sql.Identifier(database[0]), owner))
        conn.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(owner))
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")


def prepare_functions_user(master_url: str, password: str | None,
                           statement_timeout_ms: int = limits.DB_STATEMENT_TIMEOUT_MS,
                           idle_in_transaction_timeout_ms: int = limits.DB_IDLE_IN_TRANSACTION_TIMEOUT_MS) -> None:
    """The functions' login user alone (and its group if missing), as `prepare_roles` makes it: the local stack's API
    server and sync worker connect as it (no password there: the local cluster trusts loopback)."""
    with _connect(master_url) as conn, conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_ROLES_LOCK,))
        _groups(conn)
        _functions_user(conn, password, statement_timeout_ms, idle_in_transaction_timeout_ms)


def _groups(conn: psycopg.Connection[Any]) -> None:
    for group in (APP_ROLE, FINANCE_ROLE):
        if not _role_exists(conn, group):
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(group)))


def _functions_user(conn: psycopg.Connection[Any], password: str | None, statement_timeout_ms: int,
                    idle_in_transaction_timeout_ms: int) -> None:
    assert statement_timeout_ms > 0 and idle_in_transaction_timeout_ms > 0
    functions = sql.Identifier(FUNCTIONS_USER)
    _login_role(conn, FUNCTIONS_USER, password, in_role=APP_ROLE)
    conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(APP_ROLE), functions))
    for setting, value in (("statement_timeout", statement_timeout_ms),
                           ("idle_in_transaction_session_timeout", idle_in_transaction_timeout_ms)):
        conn.execute(sql.SQL("ALTER ROLE {} SET {} = {}").format(functions, sql.Identifier(setting),
                                                                 sql.Literal(str(value))))


def _role_exists(conn: psycopg.Connection[Any], role: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is not None


def _login_role(conn: psycopg.Connection[Any], role: str, password: str | None, *, in_role: str | None) -> None:
    """CREATE ROLE ... LOGIN PASSWORD ... [IN ROLE ...] the first time; afterwards the same attributes and password
    again (a rotated secret's new password lands on the next deploy)."""
    name = sql.Identifier(role)
    # Never SUPERUSER, REPLICATION or BYPASSRLS (the defaults); they are not named, because naming them at all, even
    # as NO..., takes a superuser, which the master user of RDS is not.
    attributes = sql.SQL("LOGIN INHERIT NOCREATEDB NOCREATEROLE")
    if not _role_exists(conn, role):
        membership = sql.SQL("") if in_role is None else sql.SQL(" IN ROLE {}").format(sql.Identifier(in_role))
        conn.execute(sql.SQL("CREATE ROLE {} {} PASSWORD {}{}").format(name, attributes, sql.Literal(password),
                                                                        membership))
        return
    conn.execute(sql.SQL("ALTER ROLE {} {} PASSWORD {}").format(name, attributes, sql.Literal(password)))


@contextlib.contextmanager
def _connect(url: str) -> Iterator[psycopg.Connection[Any]]:
    libpq = make_url(_with_root_cert(url)).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True, connect_timeout=limits.DB_CONNECT_TIMEOUT_S) as conn:
        yield conn


def _with_root_cert(url: str) -> str:
    """The URL with sslrootcert set where its sslmode verifies the server and names no root (as core.db does for
    the functions), for the tools that take a URL alone (psycopg here, alembic's env.py)."""
    root = connect_args_for(url, proxy=True).get("sslrootcert")
    if root is None:
        return url
    return make_url(url).update_query_dict({"sslrootcert": root}).render_as_string(hide_password=False)


def _sqlalchemy(url: str) -> str:
    return make_url(url).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


# ---- which credentials -------------------------------------------------------------------------------------------


def migration_url(settings: AdminSettings) -> str:
    """The URL migrations run with: DATABASE_URL's host and database, as paysaga_owner when DATABASE_OWNER_SECRET_ARN
    is set, else as DATABASE_SECRET_ARN's user when that is set, else as the URL says (`paysaga migrate`)."""
    secret_arn = settings.database_owner_secret_arn or settings.database_secret_arn
    if secret_arn is None:
        return settings.sqlalchemy_url
    username, password = read_credentials(settings, secret_arn, refresh=True)
    return with_credentials(settings.sqlalchemy_url, username, password)


def functions_url(url: str, password: str | None = None) -> str:
    """`url` (the master's) as the functions' login user."""
    return make_url(url).set(username=FUNCTIONS_USER, password=password).render_as_string(hide_password=False)


def _secret_of(settings: AdminSettings, variable: str, arn: str | None, expected_user: str | None) -> tuple[str, str]:
    if not arn:
        raise ValueError(f"{variable} is not set")
    username, password = read_credentials(settings, arn, refresh=True)
    if expected_user is not None and username != expected_user:
        raise ValueError(f"{variable}: the secret's username must be {expected_user} (got {username})")
    return username, password


# ---- the custom resource -----------------------------------------------------------------------------------------


REQUEST_TYPES: Final = ("Create", "Update", "Delete")


def handler(event: Mapping[str, Any], context: Any) -> dict[str, Any]:
    """The CDK Provider framework's onEvent handler of the database custom resource.

    Create and Update: prepare the roles as the master user, then `alembic upgrade head` as paysaga_owner; Data
    holds the revision the database is at. Delete: nothing (the database outlives the resource; its data is the book
    of record).

    Environment: DATABASE_URL (host, port, database and sslmode; no credentials), DATABASE_MASTER_SECRET_ARN,
    DATABASE_OWNER_SECRET_ARN, DATABASE_SECRET_ARN (the functions' user), AWS_REGION; DATABASE_PROXY as the
    functions have it.
    """
    request = event.get("RequestType")
    if request not in REQUEST_TYPES:
        raise ValueError(f"RequestType must be one of {', '.join(REQUEST_TYPES)} (got {request!r})")
    physical_id = str(event.get("PhysicalResourceId") or PHYSICAL_RESOURCE_ID)
    if request == "Delete":
        logger.info("database resource deleted: the database and its roles are kept")
        return {"PhysicalResourceId": physical_id}
    settings = load_admin_settings()
    master = _secret_of(settings, "DATABASE_MASTER_SECRET_ARN", settings.database_master_secret_arn, None)
    owner = _secret_of(settings, "DATABASE_OWNER_SECRET_ARN", settings.database_owner_secret_arn, OWNER_ROLE)
    functions = _secret_of(settings, "DATABASE_SECRET_ARN", settings.database_secret_arn, FUNCTIONS_USER)
    base = settings.sqlalchemy_url
    prepare_roles(with_credentials(base, *master), owner_password=owner[1], functions_password=functions[1])
    logger.info("database roles prepared", extra={"owner": OWNER_ROLE, "functions_user": FUNCTIONS_USER})
    owner_url = with_credentials(base, *owner)
    upgrade(owner_url)
    revision = current_revision(owner_url)
    logger.info("migrations applied", extra={"revision": revision})
    return {"PhysicalResourceId": physical_id, "Data": {"revision": revision}}
