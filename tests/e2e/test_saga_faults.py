"""The saga under faults, end to end: Redis down at authorize, PostgreSQL failing at commit after capture (parks,
and a replay finishes it), the queue failing at notify (the payment still succeeds; the event waits)."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

from sqlalchemy import text

from core.aws_resources import provision
from core.settings import load_settings
from local.stack.state import load
from local.testing.live import LiveStack
from tests.e2e.saga_support import authorizations, books_balance, captures, ledger_kinds, outbox, pay, payment_row


@contextlib.contextmanager
def frozen(pid: int) -> Iterator[None]:
    """The process stops answering (SIGSTOP) until the block ends."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@contextlib.contextmanager
def failing_outbox_inserts(live: LiveStack, order_prefix: str) -> Iterator[None]:
    """PostgreSQL fails CommitLedger's transaction (as a server shutting down does) for matching orders."""
    with live.engine.begin() as conn:
        conn.execute(text(f"""
            CREATE FUNCTION test_fail_commit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
              IF NEW.payload ->> 'order_reference' LIKE '{order_prefix}%' THEN
                RAISE EXCEPTION 'injected fault' USING ERRCODE = '57P01';
              END IF;
              RETURN NEW;
            END $$"""))
        conn.execute(text("CREATE TRIGGER test_fail_commit BEFORE INSERT ON outbox FOR EACH ROW "
                          "EXECUTE FUNCTION test_fail_commit()"))
    try:
        yield
    finally:
        with live.engine.begin() as conn:
            conn.execute(text("DROP TRIGGER IF EXISTS test_fail_commit ON outbox"))
            conn.execute(text("DROP FUNCTION IF EXISTS test_fail_commit()"))


def test_redis_down_at_authorize_means_the_gateway_is_never_called(live: LiveStack) -> None:
    _, api_key = live.new_merchant()
    redis_pid = load(live.root).parts["redis"].pid
    assert redis_pid is not None
    with frozen(redis_pid):
        response = pay(live, api_key)
    assert response.status_code == 402, response.text
    assert response.json()["error"]["type"] == "ServiceUnavailable"
    payment_id = response.json()["payment"]["id"]
    assert [c for c in live.gateway_calls(payment_id) if c["operation"] == "authorize"] == []
    assert ledger_kinds(live, payment_id) == ["reserve", "void"]
    assert payment_row(live, payment_id)["status"] == "failed"
    debits, credits, stranded = books_balance(live, payment_id)
    assert debits == credits and stranded == 0


def test_database_failure_at_commit_after_capture_parks_and_replay_finishes(live: LiveStack) -> None:
    _, api_key = live.new_merchant()
    with failing_outbox_inserts(live, "fail-commit"):
        response = pay(live, api_key, order_reference="fail-commit-1")
    assert response.status_code == 202, response.text
    payment_id = response.json()["id"]
    row = payment_row(live, payment_id)
    assert row["status"] == "needs_attention"
    # Forward recovery: the capture stands, nothing was refunded, the ledger holds only the reservation.
    calls = live.gateway_calls(payment_id)
    assert captures(calls) == 1 and not any(c["operation"] == "refund" for c in calls)
    assert ledger_kinds(live, payment_id) == ["reserve"]

    with live.engine.connect() as conn:
        failed_arn = conn.execute(text("SELECT execution_arn FROM saga_executions WHERE payment_id = :id"),
                                  {"id": int(payment_id)}).scalar_one()
    listed = live.cli("executions", "list", "--status", "FAILED")
    assert listed.returncode == 0 and payment_id in listed.stdout
    replayed = live.cli("executions", "replay", failed_arn, "--reason", "commit failed: the database went away")
    assert replayed.returncode == 0, replayed.stderr + replayed.stdout
    assert "succeeded" in replayed.stdout

    assert payment_row(live, payment_id)["status"] == "succeeded"
    calls = live.gateway_calls(payment_id)
    assert authorizations(calls) == 1 and captures(calls) == 1
    assert ledger_kinds(live, payment_id) == ["reserve", "post"]
    assert [e["sent_at"] is not None for e in outbox(live, payment_id)] == [True]
    with live.engine.connect() as conn:
        replay_of = conn.execute(text("SELECT replay_of FROM saga_executions WHERE payment_id = :id AND replay_of"
                                      " IS NOT NULL"), {"id": int(payment_id)}).scalar_one()
    assert replay_of == failed_arn
    debits, credits, stranded = books_balance(live, payment_id)
    assert debits == credits and stranded == 0


def test_queue_failure_at_notify_never_unwinds_the_payment(live: LiveStack, monkeypatch: object) -> None:
    _, api_key = live.new_merchant()
    sqs = live.sqs()
    queue_url = sqs.get_queue_url(QueueName="paysaga-notifications.fifo")["QueueUrl"]
    sqs.delete_queue(QueueUrl=queue_url)
    try:
        response = pay(live, api_key)
    finally:
        saved = dict(os.environ)
        os.environ.update(load(live.root).env())
        try:
            provision(load_settings())
        finally:
            os.environ.clear()
            os.environ.update(saved)
    assert response.status_code == 201, response.text
    payment_id = response.json()["id"]
    assert payment_row(live, payment_id)["status"] == "succeeded"
    assert ledger_kinds(live, payment_id) == ["reserve", "post"]
    events = outbox(live, payment_id)
    assert len(events) == 1 and events[0]["sent_at"] is None and events[0]["attempts"] >= 1
