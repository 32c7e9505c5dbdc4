"""On AWS the database password comes from Secrets Manager, never from the environment, and survives a rotation: the
engine holds no password, each new connection reads the cached secret (Powertools Parameters, SECRET_MAX_AGE_S), and
a login refused for its password rereads the secret and tries once more.

Against a PostgreSQL that checks passwords (SCRAM), and the AWS emulator's Secrets Manager."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import text

from core import db
from core.aws import client
from core.settings import Settings
from local.testing.servers import PostgresServer


def _admin(server: PostgresServer) -> psycopg.Connection[Any]:
    return psycopg.connect(server.url("postgres", "postgresql"), autocommit=True)


def _set_password(server: PostgresServer, role: str, password: str, *, create: bool = False) -> None:
    verb = "CREATE" if create else "ALTER"
    with _admin(server) as conn:
        conn.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))


@pytest.fixture
def role(password_pg: PostgresServer) -> Iterator[str]:
    name = f"rotating_{uuid.uuid4().hex[:8]}"
    _set_password(password_pg, name, "first-pass", create=True)
    yield name
    with _admin(password_pg) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", (name,))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def _secret(aws_env: str, value: dict[str, str]) -> str:
    secrets = client("secretsmanager", _settings("postgresql://unused@127.0.0.1:1/unused", None))
    return str(secrets.create_secret(Name=f"paysaga/db/{uuid.uuid4().hex}", SecretString=json.dumps(value))["ARN"])


def _rotate_secret(settings: Settings, value: dict[str, str]) -> None:
    assert settings.database_secret_arn is not None
    client("secretsmanager", settings).put_secret_value(SecretId=settings.database_secret_arn,
                                                        SecretString=json.dumps(value))


def _settings(url: str, secret_arn: str | None) -> Settings:
    return Settings(DATABASE_URL=url, REDIS_URL="redis://127.0.0.1:1/0",  # type: ignore[call-arg]
                    DATABASE_SECRET_ARN=secret_arn)


def _reads_of_the_secret(settings: Settings) -> list[str]:
    """Every GetSecretValue the engine's secret cache sends from now on."""
    calls: list[str] = []
    db._secrets(settings).client.meta.events.register(
        "before-call.secrets-manager.GetSecretValue", lambda **_: calls.append("GetSecretValue"))
    return calls


def _who(settings: Settings) -> str:
    with db.engine(settings).connect() as conn:
        return str(conn.execute(text("SELECT current_user")).scalar_one())


def test_the_server_checks_passwords(password_pg: PostgresServer, role: str) -> None:
    """What makes the rotation tests below mean something."""
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(f"postgresql://{role}:wrong@{password_pg.host}:{password_pg.port}/postgres")


def test_the_secret_supplies_user_and_password_at_connect_and_the_engine_holds_neither(
        password_pg: PostgresServer, role: str, aws_env: str) -> None:
    arn = _secret(aws_env, {"username": role, "password": "first-pass", "host": "ignored"})
    settings = _settings(f"postgresql://nobody@{password_pg.host}:{password_pg.port}/postgres", arn)
    assert _who(settings) == role
    engine = db.engine(settings)
    assert engine.url.password is None and engine.url.username == "nobody"
    assert "first-pass" not in repr(engine.url) and "first-pass" not in engine.url.render_as_string(False)


def test_a_rotated_password_is_read_again_when_the_server_refuses_the_cached_one(
        password_pg: PostgresServer, role: str, aws_env: str) -> None:
    arn = _secret(aws_env, {"username": role, "password": "first-pass"})
    settings = _settings(f"postgresql://{password_pg.host}:{password_pg.port}/postgres", arn)
    reads = _reads_of_the_secret(settings)
    assert _who(settings) == role
    assert reads == ["GetSecretValue"]

    # Rotation, as Secrets Manager's single-user rotation does it: the database's password, then the secret's.
    _set_password(password_pg, role, "second-pass")
    _rotate_secret(settings, {"username": role, "password": "second-pass"})
    db.engine(settings).dispose()  # the next checkout needs a new connection

    assert _who(settings) == role  # refused with the cached password, reread, connected
    assert reads == ["GetSecretValue", "GetSecretValue"]
    assert _who(settings) == role  # pooled now: nothing read
    assert len(reads) == 2


def test_past_its_max_age_the_secret_is_read_again_before_connecting(
        password_pg: PostgresServer, role: str, aws_env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "SECRET_MAX_AGE_S", 1)
    refused: list[BaseException] = []
    judge = db.authentication_failed
    monkeypatch.setattr(db, "authentication_failed", lambda error: refused.append(error) or judge(error))
    arn = _secret(aws_env, {"username": role, "password": "first-pass"})
    settings = _settings(f"postgresql://{password_pg.host}:{password_pg.port}/postgres", arn)
    assert _who(settings) == role

    _set_password(password_pg, role, "second-pass")
    _rotate_secret(settings, {"username": role, "password": "second-pass"})
    db.engine(settings).dispose()
    time.sleep(1.2)

    assert _who(settings) == role
    assert refused == []  # the cache had expired: the new password was used at the first attempt


def test_a_connection_refused_for_another_reason_does_not_reread_the_secret(aws_env: str) -> None:
    arn = _secret(aws_env, {"username": "anyone", "password": "pass"})
    settings = _settings("postgresql://127.0.0.1:1/postgres", arn)  # nothing listens on port 1
    reads = _reads_of_the_secret(settings)
    with pytest.raises(Exception, match=r"Connection refused|connection failed"):
        _who(settings)
    assert reads == ["GetSecretValue"]


def test_a_secret_without_a_password_is_named(aws_env: str) -> None:
    arn = _secret(aws_env, {"username": "anyone"})
    settings = _settings("postgresql://127.0.0.1:1/postgres", arn)
    with pytest.raises(db.DatabaseSecretError, match="username and a password"):
        db.read_credentials(settings, arn)


def test_without_a_secret_the_url_is_used_as_given(dynamo_settings: Settings) -> None:
    assert db.database_credentials(dynamo_settings) is None
    assert str(db.engine(dynamo_settings).url.render_as_string(False)) == dynamo_settings.sqlalchemy_url
