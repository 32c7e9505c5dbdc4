"""Settings fail at start with a message naming the variable."""

from __future__ import annotations

import pytest

from core.settings import SettingsError, load_settings


def test_missing_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    with pytest.raises(SettingsError, match=r"DATABASE_URL is not set"):
        load_settings()


def test_malformed_settings_are_each_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://nope")
    monkeypatch.setenv("REDIS_URL", "http://not-redis")
    monkeypatch.setenv("GATEWAY_TIMEOUT_MS", "70")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert "DATABASE_URL is malformed" in message
    assert "REDIS_URL is malformed" in message
    assert "GATEWAY_TIMEOUT_MS is malformed" in message


def test_secrets_do_not_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:s3cret@db/x")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_should_not_leak")
    current = load_settings()
    assert "s3cret" not in repr(current) and "sk_test_should_not_leak" not in repr(current)
    assert current.sqlalchemy_url == "postgresql+psycopg://u:s3cret@db/x"


def test_cli_prints_one_line_for_bad_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from local.cli import app

    monkeypatch.setenv("PAYSAGA_STACK_DIR", "/nonexistent-paysaga-stack")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    result = CliRunner().invoke(app, ["migrate"])
    assert result.exit_code == 1
    assert "DATABASE_URL is not set" in result.output
    assert "Traceback" not in result.output


def test_a_lease_longer_than_the_keys_hold_is_refused_naming_both(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db/x")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("IDEMPOTENCY_IN_PROGRESS_TTL_MS", "6000")
    monkeypatch.setenv("EXECUTION_LEASE_MS", "6001")
    with pytest.raises(SettingsError, match=r"EXECUTION_LEASE_MS \(6001\) must not exceed "
                                            r"IDEMPOTENCY_IN_PROGRESS_TTL_MS \(6000\)"):
        load_settings()
    monkeypatch.setenv("EXECUTION_LEASE_MS", "6000")
    assert load_settings().execution_lease_ms == 6000
