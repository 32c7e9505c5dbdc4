"""Shared fixtures. Servers start once per test session; every test gets its own database, a flushed Redis and a
freshly provisioned emulator, so tests never see each other's data."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis as redis_lib

from core.settings import Settings, settings
from local.testing import servers
from local.testing.live import LiveStack, live_stack

PROJECT_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE_DB = "paysaga_template"
_db_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[servers.PostgresServer]:
    with servers.postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def pg_template(pg_server: servers.PostgresServer) -> str:
    """A database migrated to head once per session; each test clones it (CREATE DATABASE ... TEMPLATE)."""
    from local.migrate import upgrade

    with psycopg.connect(pg_server.url("postgres", "postgresql"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"')
        conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
    upgrade(pg_server.url(TEMPLATE_DB))
    return TEMPLATE_DB


@pytest.fixture
def database_url(pg_server: servers.PostgresServer, pg_template: str) -> Iterator[str]:
    """A fresh, migrated database for this test alone (SQLAlchemy URL with the psycopg driver)."""
    name = f"test_{os.getpid()}_{next(_db_counter)}"
    admin = pg_server.url("postgres", "postgresql")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield pg_server.url(name)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def redis_server_url() -> Iterator[str]:
    with servers.redis() as url:
        yield url


@pytest.fixture
def redis_url(redis_server_url: str) -> str:
    client = redis_lib.Redis.from_url(redis_server_url)
    client.flushall()
    client.close()
    return redis_server_url


@pytest.fixture(scope="session")
def aws_emulator_url() -> Iterator[str]:
    with servers.aws_emulator() as url:
        yield url


@pytest.fixture
def aws_env(aws_emulator_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The emulator, reset, with boto3's credentials and endpoint in the environment (as the local stack sets them)."""
    servers.reset_emulator(aws_emulator_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_emulator_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    return aws_emulator_url


@pytest.fixture
def app_settings(
    database_url: str, redis_url: str, aws_env: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """Settings for the whole system, exported to the environment (Lambda handlers read it there) and provisioned."""
    from core.aws_resources import provision

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", redis_url)
    settings.cache_clear()
    current = settings()
    provision(current)
    yield current
    settings.cache_clear()


@pytest.fixture(scope="session")
def live() -> Iterator[LiveStack]:
    """The whole local stack, as `make run` starts it, in a throwaway folder (started once per session)."""
    with live_stack() as stack:
        yield stack


@pytest.fixture
def dynamo_settings(aws_env: str) -> Settings:
    """Settings pointing at the reset emulator with only the DynamoDB tables created: for tests that need neither
    PostgreSQL nor Redis (their URLs are placeholders that are never dialled)."""
    from core.aws_resources import create_tables

    current = Settings(  # type: ignore[call-arg]
        DATABASE_URL="postgresql://unused@127.0.0.1:1/unused",
        REDIS_URL="redis://127.0.0.1:1/0",
        AWS_ENDPOINT_URL=aws_env,
    )
    create_tables(current)
    return current
