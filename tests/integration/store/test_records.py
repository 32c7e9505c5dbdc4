"""Payments, merchants, outbox and saga execution records: idempotent writes, typed reads."""

from __future__ import annotations

import hashlib

from sqlalchemy import Engine

from store import (
    Reason,
    finish_execution,
    get_event,
    get_execution,
    get_payment,
    insert_event,
    insert_execution,
    insert_payment,
    list_executions,
    mark_sent,
    record_attempt,
    unsent_events,
)
from store.merchants import find_by_key_hash, get_merchant, insert_merchant, list_merchants, rotate_key
from tests.integration.store.support import make_merchant, make_payment


def test_merchant_keys_are_found_by_hash_and_rotated(engine: Engine) -> None:
    old, new = hashlib.sha256(b"sk_old").digest(), hashlib.sha256(b"sk_new").digest()
    with engine.begin() as conn:
        args = {
            "merchant_id": "mer_01",
            "name": "Shop",
            "api_key_prefix": "sk_old",
            "max_amount_minor": 50_000,
            "currencies": ["EUR", "USD"],
            "gateway": "stripe",
        }
        assert insert_merchant(conn, api_key_sha256=old, **args).applied  # type: ignore[arg-type]
        assert insert_merchant(conn, api_key_sha256=old, **args).reason is Reason.ALREADY_EXISTS  # type: ignore[arg-type]
        found = find_by_key_hash(conn, api_key_sha256=old)
        assert found is not None and found.currencies == ["EUR", "USD"] and found.key_rotated_at is None
        assert found.gateway == "stripe"
        assert rotate_key(conn, merchant_id="mer_01", api_key_sha256=new, api_key_prefix="sk_new").applied
        assert find_by_key_hash(conn, api_key_sha256=old) is None
        rotated = get_merchant(conn, merchant_id="mer_01")
        assert rotated is not None and rotated.api_key_prefix == "sk_new" and rotated.key_rotated_at is not None
        assert [m.id for m in list_merchants(conn)] == ["mer_01"]
        assert rotate_key(conn, merchant_id="nope", api_key_sha256=old, api_key_prefix="x").reason is Reason.NOT_FOUND


def test_payment_insert_is_idempotent_by_id(engine: Engine) -> None:
    with engine.begin() as conn:
        merchant = make_merchant(conn)
        payment = make_payment(conn, merchant_id=merchant, amount_minor=1_234, currency="EUR")
        again = insert_payment(conn, payment_id=payment, merchant_id=merchant, amount_minor=9, currency="EUR")
        assert (again.applied, again.reason) == (False, Reason.ALREADY_EXISTS)
        record = get_payment(conn, payment_id=payment)
        assert record is not None
        assert (record.amount_minor, record.status, record.version, record.metadata) == (1_234, "created", 0, {})
        assert get_payment(conn, payment_id=payment + 10**9) is None


def test_outbox_one_event_per_payment_and_type(engine: Engine) -> None:
    with engine.begin() as conn:
        merchant = make_merchant(conn)
        payment = make_payment(conn, merchant_id=merchant, amount_minor=100, currency="EUR")
        assert insert_event(conn, event_id="01A", payment_id=payment, event_type="succeeded", payload={"a": 1}).applied
        dup = insert_event(conn, event_id="01B", payment_id=payment, event_type="succeeded", payload={"a": 2})
        assert dup.reason is Reason.ALREADY_EXISTS
        assert [e.id for e in unsent_events(conn, limit=10)] == ["01A"]
        assert record_attempt(conn, event_id="01A").applied
        assert mark_sent(conn, event_id="01A").applied
        assert mark_sent(conn, event_id="01A").reason is Reason.ALREADY_APPLIED
        assert mark_sent(conn, event_id="nope").reason is Reason.NOT_FOUND
        event = get_event(conn, payment_id=payment, event_type="succeeded")
        assert event is not None and event.payload == {"a": 1} and event.attempts == 1 and event.sent_at is not None
        assert unsent_events(conn) == []


def test_saga_executions_record_and_finish_once(engine: Engine) -> None:
    arn = "arn:aws:states:eu-west-1:000000000000:express:paysaga:run-1"
    with engine.begin() as conn:
        assert insert_execution(conn, execution_arn=arn, payment_id=42, name="run-1", input={"x": 1}).applied
        assert insert_execution(conn, execution_arn=arn, payment_id=42, name="run-1", input={}).reason is (
            Reason.ALREADY_EXISTS
        )
        replay = arn + "-replay"
        assert insert_execution(conn, execution_arn=replay, payment_id=42, name="r", input={}, replay_of=arn).applied
        done = finish_execution(conn, execution_arn=arn, status="FAILED", error="PaymentDeclined", history=[{"s": 1}])
        assert done.applied
        assert finish_execution(conn, execution_arn=arn, status="SUCCEEDED").reason is Reason.ALREADY_APPLIED
        record = get_execution(conn, execution_arn=arn)
        assert record is not None
        assert (record.status, record.error, record.history, record.input) == (
            "FAILED",
            "PaymentDeclined",
            [{"s": 1}],
            {"x": 1},
        )
        assert record.stopped_at is not None
        assert [e.execution_arn for e in list_executions(conn, status="FAILED")] == [arn]
        assert {e.execution_arn for e in list_executions(conn, payment_id=42)} == {arn, replay}
