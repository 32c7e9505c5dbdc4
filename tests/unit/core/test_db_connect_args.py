"""The database connection arguments: behind RDS Proxy no startup `options` (the proxy refuses them: "Feature not
supported") and no server-side prepared statements (they pin proxy connections); verify-full TLS gets a root bundle
that exists. Checked on the pure function and on what the functions' engine really hands psycopg."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from core import db
from core.settings import Settings

_ports = itertools.count(40_001)


def _settings(url: str, **extra: Any) -> Settings:
    return Settings(DATABASE_URL=url, REDIS_URL="redis://127.0.0.1:1/0", **extra)  # type: ignore[call-arg]


def test_behind_the_proxy_there_are_no_startup_options_and_no_prepared_statements() -> None:
    args = db.connect_args(_settings("postgresql://proxy.example:5432/paysaga", DATABASE_PROXY=True))
    assert "options" not in args
    assert "prepare_threshold" in args and args["prepare_threshold"] is None
    assert args["connect_timeout"] == db.CONNECT_TIMEOUT_S


def test_the_proxy_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.settings import load_settings

    monkeypatch.setenv("DATABASE_URL", "postgresql://proxy.example:5432/paysaga")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("DATABASE_PROXY", "true")
    assert "options" not in db.connect_args(load_settings())
    monkeypatch.delenv("DATABASE_PROXY")
    assert load_settings().database_proxy is False


def test_locally_the_statement_timeout_is_a_startup_option_and_statements_are_prepared() -> None:
    args = db.connect_args(_settings("postgresql://u@127.0.0.1:5432/paysaga"))
    assert args["options"] == f"-c statement_timeout={db.STATEMENT_TIMEOUT_MS}"
    assert "prepare_threshold" not in args  # psycopg's default: auto-prepare


@pytest.mark.parametrize("sslmode", ["verify-full", "verify-ca"])
def test_a_verifying_sslmode_gets_a_root_bundle_that_exists(sslmode: str) -> None:
    args = db.connect_args(_settings(f"postgresql://proxy.example:5432/paysaga?sslmode={sslmode}",
                                     DATABASE_PROXY=True))
    root = Path(args["sslrootcert"])
    assert root.is_file() and root.stat().st_size > 0
    assert "BEGIN CERTIFICATE" in root.read_text()
    assert "Amazon Root CA 1" in root.read_text()  # what RDS Proxy's ACM certificate chains to


def test_a_given_root_and_a_non_verifying_sslmode_are_left_alone() -> None:
    given = db.connect_args(_settings("postgresql://h:5432/d?sslmode=verify-full&sslrootcert=/opt/rds.pem"))
    assert "sslrootcert" not in given  # the URL's own reaches psycopg as it is
    assert "sslrootcert" not in db.connect_args(_settings("postgresql://h:5432/d?sslmode=require"))


class _Stop(Exception):
    pass


def _connect_params(settings: Settings) -> dict[str, Any]:
    """What the functions' engine passes psycopg at connect (caught before any socket is opened)."""
    made = db.engine(settings)
    seen: dict[str, Any] = {}

    @event.listens_for(made, "do_connect")
    def spy(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        seen.update(cparams)
        raise _Stop

    with pytest.raises(_Stop):
        made.connect()
    return seen


def test_the_engine_of_the_functions_behind_the_proxy_connects_with_those_arguments() -> None:
    url = f"postgresql://proxy.example:{next(_ports)}/paysaga?sslmode=verify-full"
    params = _connect_params(_settings(url, DATABASE_PROXY=True))
    assert "options" not in params and params["prepare_threshold"] is None
    assert Path(params["sslrootcert"]).is_file() and params["sslmode"] == "verify-full"


def test_the_local_engine_keeps_the_startup_statement_timeout() -> None:
    params = _connect_params(_settings(f"postgresql://u@127.0.0.1:{next(_ports)}/paysaga"))
    assert params["options"] == f"-c statement_timeout={db.STATEMENT_TIMEOUT_MS}"
