"""One SQLAlchemy engine per process and database (a Lambda container, the API server, a CLI command).

On AWS the functions connect through RDS Proxy (DATABASE_PROXY=true) as a least-privileged login role whose password
lives in Secrets Manager (DATABASE_SECRET_ARN). The password never enters the URL or the engine: each new connection
reads it from a cache that expires after SECRET_MAX_AGE_S, and a connection refused for its password reads the secret
again at once and retries, so a rotation never locks the functions out.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import certifi
import psycopg
from aws_lambda_powertools.utilities import parameters
from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import Engine, create_engine, event, make_url

from core import limits
from core.aws import client
from core.settings import Settings

POOL_SIZE = 10  # per process; RDS Proxy multiplexes on AWS
MAX_OVERFLOW = 40  # bursts of concurrent checkouts in the local server's thread pool
CONNECT_TIMEOUT_S = limits.DB_CONNECT_TIMEOUT_S
STATEMENT_TIMEOUT_MS = limits.DB_STATEMENT_TIMEOUT_MS  # no statement of ours may hold locks for longer
SECRET_MAX_AGE_S = limits.SECRET_MAX_AGE_S
# sslmode values under which libpq checks the server's certificate against a root: one must be given.
VERIFYING_SSLMODES = frozenset({"verify-ca", "verify-full"})
# SQLSTATEs of a refused login (invalid_password, invalid_authorization_specification); libpq reports a refusal at
# connect in the message only, so the message is checked too.
_AUTH_SQLSTATES = frozenset({"28P01", "28000"})
_AUTH_MESSAGE = "password authentication failed"


class DatabaseSecretError(RuntimeError):
    """The database secret is not a JSON object with a username and a password."""


def connect_args(settings: Settings) -> dict[str, Any]:
    """What psycopg gets at connect besides the URL, for these settings (pure: reads nothing but its argument).

    - Locally (DATABASE_PROXY false) the statement timeout is a startup option, as before.
    - Behind RDS Proxy there is no `options` (the proxy refuses startup parameters: "Feature not supported"; its init
      query and the login role set the timeouts) and no server-side prepared statements (`prepare_threshold=None`:
      psycopg's auto-prepare pins each proxy connection to its client).
    - sslmode verify-full or verify-ca without an sslrootcert gets certifi's bundle (Mozilla's roots, which hold the
      Amazon roots RDS Proxy's ACM certificates chain to; libpq's default, ~/.postgresql/root.crt, does not exist on
      Lambda).
    """
    return connect_args_for(settings.sqlalchemy_url, proxy=settings.database_proxy)


def connect_args_for(url: str, *, proxy: bool) -> dict[str, Any]:
    """`connect_args` for a URL, behind RDS Proxy or not."""
    args: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT_S}
    if proxy:
        args["prepare_threshold"] = None
    else:
        args["options"] = f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"
    query = make_url(url).query
    if query.get("sslmode") in VERIFYING_SSLMODES and "sslrootcert" not in query:
        args["sslrootcert"] = certifi.where()
    return args


@functools.cache
def _secrets(settings: Settings) -> parameters.SecretsProvider:
    """One Powertools provider (and so one cache) per process and AWS endpoint, on our bounded boto3 client."""
    return parameters.SecretsProvider(boto3_client=client("secretsmanager", settings))


def read_credentials(settings: Settings, secret_arn: str, *, refresh: bool = False) -> tuple[str, str]:
    """(username, password) of a database secret, from the process's cache unless older than SECRET_MAX_AGE_S or
    `refresh` is asked. The secret is JSON with at least "username" and "password" (as RDS and rotation write it).
    Secrets Manager's own errors come through as botocore raised them (the steps' retry contract judges those)."""
    try:
        value = _secrets(settings).get(secret_arn, max_age=SECRET_MAX_AGE_S, transform="json", force_fetch=refresh)
    except parameters.exceptions.GetParameterError as error:
        cause = error.__context__  # Powertools wraps whatever the client raised
        if isinstance(cause, BotoCoreError | ClientError):
            raise cause from None
        raise
    except parameters.exceptions.TransformParameterError:
        value = None
    if not isinstance(value, Mapping) or not value.get("username") or not value.get("password"):
        raise DatabaseSecretError(f"the secret {secret_arn} must be a JSON object with a username and a password")
    return str(value["username"]), str(value["password"])


def database_credentials(settings: Settings, *, refresh: bool = False) -> tuple[str, str] | None:
    """(username, password) from DATABASE_SECRET_ARN, or None when the URL carries its own credentials."""
    if settings.database_secret_arn is None:
        return None
    return read_credentials(settings, settings.database_secret_arn, refresh=refresh)


def authentication_failed(error: BaseException) -> bool:
    """Whether a connection was refused for its credentials (a rotated password), not for anything else."""
    if not isinstance(error, psycopg.OperationalError):
        return False
    return getattr(error, "sqlstate", None) in _AUTH_SQLSTATES or _AUTH_MESSAGE in str(error)


def with_credentials(url: str, username: str, password: str) -> str:
    """`url` with this user and password (URL-encoded), for a tool that takes a URL alone (alembic)."""
    return make_url(url).set(username=username, password=password).render_as_string(hide_password=False)


def _frozen(args: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(args.items()))


@functools.cache
def _engine(url: str, args: tuple[tuple[str, Any], ...], secret_source: Settings | None) -> Engine:
    made = create_engine(
        url,
        pool_size=POOL_SIZE,
        max_overflow=MAX_OVERFLOW,
        pool_pre_ping=True,
        pool_timeout=limits.DB_POOL_TIMEOUT_S,
        connect_args=dict(args),
    )
    if secret_source is not None and secret_source.database_secret_arn is not None:
        _connect_with_secret(made, secret_source, secret_source.database_secret_arn)
    return made


def _connect_with_secret(made: Engine, settings: Settings, secret_arn: str) -> None:
    @event.listens_for(made, "do_connect")
    def _credentials(dialect: Any, _record: Any, cargs: list[Any], cparams: dict[str, Any]) -> Any:
        username, password = read_credentials(settings, secret_arn)
        try:
            return dialect.connect(*cargs, **{**cparams, "user": username, "password": password})
        except psycopg.OperationalError as error:
            if not authentication_failed(error):
                raise
        # Refused for the password: the secret was rotated since we read it. Read it anew and try once more.
        username, password = read_credentials(settings, secret_arn, refresh=True)
        return dialect.connect(*cargs, **{**cparams, "user": username, "password": password})


def engine_for(url: str) -> Engine:
    """An engine on a URL that carries its own credentials (local tools), with the local connection arguments."""
    return _engine(url, _frozen(connect_args_for(url, proxy=False)), None)


def engine(settings: Settings) -> Engine:
    """The process's engine for these settings: made once per database, connection arguments and secret."""
    # With a secret, the URL is DATABASE_URL as given: the secret names the user and password at each connect.
    secret_source = settings if settings.database_secret_arn is not None else None
    return _engine(settings.sqlalchemy_url, _frozen(connect_args(settings)), secret_source)
