"""One SQLAlchemy engine per process and database URL (a Lambda container, the API server, a CLI command)."""

from __future__ import annotations

import functools
import json

from sqlalchemy import Engine, create_engine, make_url

from core import limits
from core.aws import client
from core.settings import Settings

POOL_SIZE = 10  # per process; RDS Proxy multiplexes on AWS
MAX_OVERFLOW = 40  # bursts of concurrent checkouts in the local server's thread pool
CONNECT_TIMEOUT_S = limits.DB_CONNECT_TIMEOUT_S
STATEMENT_TIMEOUT_MS = limits.DB_STATEMENT_TIMEOUT_MS  # no statement of ours may hold locks for longer


@functools.cache
def engine_for(url: str) -> Engine:
    return create_engine(
        url,
        pool_size=POOL_SIZE,
        max_overflow=MAX_OVERFLOW,
        pool_pre_ping=True,
        pool_timeout=limits.DB_POOL_TIMEOUT_S,
        connect_args={"connect_timeout": CONNECT_TIMEOUT_S,
                      "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"},
    )


def database_url(settings: Settings) -> str:
    """The SQLAlchemy URL to connect with: DATABASE_URL, with the user and password of DATABASE_SECRET_ARN when set
    (read once per process; the secret stays out of the environment and the Lambda configuration)."""
    if settings.database_secret_arn is None:
        return settings.sqlalchemy_url
    return _with_secret(settings, settings.sqlalchemy_url, settings.database_secret_arn)


@functools.cache
def _with_secret(settings: Settings, url: str, secret_arn: str) -> str:
    secret = json.loads(client("secretsmanager", settings).get_secret_value(SecretId=secret_arn)["SecretString"])
    return make_url(url).set(username=secret["username"], password=secret["password"]).render_as_string(
        hide_password=False)


def engine(settings: Settings) -> Engine:
    """The process's engine for these settings."""
    return engine_for(database_url(settings))
