"""`paysaga merchants webhooks ...` on PostgreSQL, in-process (Typer's runner), with a real receiver on loopback: add
(the secret printed once), list (never the secret), rotate-secret, deliver, deliveries (with attempts), resend,
resend-failed, remove."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine, update
from typer.testing import CliRunner

from local import cli
from saga.notifications.webhooks import EVENT_ID_HEADER, SIGNATURE_HEADER, enqueue_deliveries
from store.schema import webhook_deliveries
from tests.integration.saga.webhook_support import make_event, receiver, verify

runner = CliRunner()


@pytest.fixture(autouse=True)
def _environment(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # required by the settings; never used here
    monkeypatch.setenv("WEBHOOKS_ALLOW_LOOPBACK", "true")
    monkeypatch.setenv("PAYSAGA_STACK_DIR", "/nonexistent-paysaga-stack")
    monkeypatch.setattr(cli.console, "width", 400)


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(cli.app, ["merchants", "webhooks", *args])
    return result.exit_code, result.output


def test_the_webhook_commands(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    with engine.begin() as conn:
        event = make_event(conn)
    merchant_id = event.payload["merchant_id"]
    with receiver([500, 200]) as hook:
        code, out = _run("add", merchant_id, hook.url)
        assert code == 0, out
        endpoint_id = re.search(r"(we_\w+)", out)
        secret = re.search(r"(whsec_[\w-]+)", out)
        assert endpoint_id and secret
        endpoint_id_, secret_ = endpoint_id.group(1), secret.group(1)

        code, out = _run("list", merchant_id)
        assert code == 0 and endpoint_id_ in out and secret_ not in out and secret_[-4:] in out

        code, out = _run("rotate-secret", endpoint_id_, "--overlap-hours", "1")
        assert code == 0, out
        rotated = re.search(r"(whsec_[\w-]+)", out)
        assert rotated and rotated.group(1) != secret_

        with engine.begin() as conn:
            assert enqueue_deliveries(conn, event) == 1
        code, out = _run("deliver")
        assert code == 0 and "0 delivered, 1 to retry" in out, out
        code, out = _run("resend", event.id, "--endpoint", endpoint_id_)  # no need to wait out the backoff
        assert code == 0 and "1 deliveries due now" in out, out
        code, out = _run("deliver")
        assert code == 0 and "1 delivered" in out, out

        code, out = _run("deliveries", endpoint_id_)
        assert code == 0 and event.id in out and "succeeded" in out and "HTTP 500" in out, out

        with engine.begin() as conn:  # as if its attempts had run out
            conn.execute(update(webhook_deliveries).values(status="failed"))
        code, out = _run("resend-failed", endpoint_id_)
        assert code == 0 and "1 failed deliveries due now" in out, out
        code, out = _run("deliver")
        assert code == 0 and "1 delivered" in out, out

    assert len(hook.requests) == 3
    assert {r.body for r in hook.requests} == {hook.requests[0].body}
    assert {r.headers[EVENT_ID_HEADER] for r in hook.requests} == {event.id}
    for request in hook.requests:  # during the overlap: signed with both secrets
        assert verify(request.headers[SIGNATURE_HEADER], request.body, rotated.group(1))
        assert verify(request.headers[SIGNATURE_HEADER], request.body, secret_)

    code, out = _run("remove", endpoint_id_)
    assert code == 0 and "removed" in out
    code, out = _run("remove", endpoint_id_)
    assert code == 1 and "no webhook endpoint" in out
    code, out = _run("list", merchant_id)
    assert endpoint_id_ not in out


def test_a_refused_url_is_named(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    with engine.begin() as conn:
        event = make_event(conn)
    code, out = _run("add", event.payload["merchant_id"], "http://169.254.169.254/latest")
    assert code == 1 and "url" in out and "link-local" in out
    code, out = _run("add", "mer_nobody", "http://127.0.0.1:9/x")
    assert code == 1 and "merchant_id" in out
