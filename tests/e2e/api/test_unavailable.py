"""503 with Retry-After when a backend is down, and a retry with the same key once it is back gets the payment.
Each test restores the backend in a finally: the live stack is shared by the whole session."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from ulid import ULID

from core.aws import client
from core.aws_resources import provision
from core.settings import load_settings
from local.stack.state import load
from local.testing.live import LiveStack
from tests.e2e.api.support import body, error_of, get, merchant_payments, no_traceback, post


def _assert_unavailable(response_status: int, retry_after: str | None, text_body: str) -> None:
    assert response_status == 503, text_body
    assert retry_after is not None and int(retry_after) >= 1
    assert "Traceback" not in text_body


def test_503_when_the_database_refuses_connections(live: LiveStack) -> None:
    merchant_id, api_key = live.new_merchant()
    key, sent = str(ULID()), body()
    database = live.engine.url.database
    admin = create_engine(live.engine.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                              " WHERE datname = :db AND pid <> pg_backend_pid()"), {"db": database})
        down = post(live, api_key, key=key, json_body=sent)
        shown = get(live, api_key, "1")
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
        admin.dispose()
        live.engine.dispose()  # its pooled connections were terminated above

    _assert_unavailable(down.status_code, down.headers.get("retry-after"), down.text)
    assert error_of(down)["type"] == "ServiceUnavailable" and "database" in error_of(down)["message"]
    _assert_unavailable(shown.status_code, shown.headers.get("retry-after"), shown.text)

    retried = post(live, api_key, key=key, json_body=sent)
    assert retried.status_code == 201, retried.text
    assert len(merchant_payments(live, merchant_id)) == 1


def test_503_when_the_idempotency_store_is_gone_then_recovers(live: LiveStack,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    merchant_id, api_key = live.new_merchant()
    key, sent = str(ULID()), body()
    for name, value in load(live.root).env().items():
        monkeypatch.setenv(name, value)
    settings = load_settings()
    dynamodb = client("dynamodb", settings)
    dynamodb.delete_table(TableName=settings.idempotency_table)
    try:
        down = post(live, api_key, key=key, json_body=sent)
    finally:
        provision(settings)

    no_traceback(down)
    _assert_unavailable(down.status_code, down.headers.get("retry-after"), down.text)
    assert "idempotency" in error_of(down)["message"]
    assert merchant_payments(live, merchant_id) == []  # refused before anything was written

    retried = post(live, api_key, key=key, json_body=sent)
    assert retried.status_code == 201, retried.text
