"""Applying stored gateway notices (saga.webhooks.apply_notice): disputes move money through the ledger once, events
that outrun their payment wait, decisions that outrun their opening wait, and every state keeps the books balanced."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count

from sqlalchemy import Connection, Engine, text

from ledger import post, reserve
from saga.webhooks import apply_notice, apply_pending
from steps.gateway.notices import NoticeKind
from store.disputes import disputes_of_payment
from store.notices import get_notice, insert_notice
from tests.integration.ledger.support import assert_invariants
from tests.integration.store.support import make_merchant, make_payment

_events = count(1)


def _captured(conn: Connection, *, gateway: str = "stripe", amount_minor: int = 10_000) -> int:
    """A payment of `gateway` whose capture of `amount_minor` EUR is posted, as CommitLedger leaves it."""
    merchant = make_merchant(conn)
    payment = make_payment(conn, merchant_id=merchant, amount_minor=amount_minor, currency="EUR")
    conn.execute(text("UPDATE payments SET gateway = :g, gateway_reference = :ref WHERE id = :id"),
                 {"g": gateway, "ref": f"pi_{payment}", "id": payment})
    assert reserve(conn, payment_id=payment, merchant_id=merchant, gateway=gateway, currency="EUR",
                   amount_minor=amount_minor).applied
    assert post(conn, payment_id=payment, amount_minor=amount_minor, fee_minor=100).applied
    return payment


def _notice(engine: Engine, kind: NoticeKind, *, payment_ref: str | None, gateway_reference: str | None = None,
            operation_reference: str = "dp_1", amount_minor: int | None = 10_000, gateway: str = "stripe") -> str:
    event_id = f"evt_{next(_events)}_{datetime.now(UTC).timestamp()}"
    with engine.begin() as conn:
        assert insert_notice(conn, gateway=gateway, event_id=event_id, kind=kind.value,
                             occurred_at=datetime.now(UTC), payload={"id": event_id}, payment_ref=payment_ref,
                             gateway_reference=gateway_reference, operation_reference=operation_reference,
                             amount_minor=amount_minor, currency="EUR", reason="fraudulent").applied
    return event_id


def _balance(engine: Engine, code: str) -> int:
    with engine.connect() as conn:
        row = conn.execute(text("SELECT debits_posted - credits_posted FROM accounts WHERE code = :c"),
                           {"c": code}).scalar_one_or_none()
    return int(row or 0)


def _kinds(engine: Engine, payment: int) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT kind FROM ledger_transactions WHERE payment_id = :p ORDER BY id"),
                                 {"p": payment}).scalars())


def _events_of(engine: Engine, payment: int) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(text("SELECT event_type FROM outbox WHERE payment_id = :p ORDER BY created_at"),
                                 {"p": payment}).scalars())


def test_a_dispute_opened_then_lost_moves_the_amount_to_disputes_then_to_losses(engine: Engine) -> None:
    with engine.begin() as conn:
        payment = _captured(conn)
    clearing_before = _balance(engine, "gateway_clearing:stripe:EUR")
    opened = _notice(engine, NoticeKind.DISPUTE_OPENED, payment_ref=str(payment))
    assert apply_notice(engine, "stripe", opened)
    assert _balance(engine, "disputes:stripe:EUR") == 10_000
    assert _balance(engine, "gateway_clearing:stripe:EUR") == clearing_before - 10_000
    assert apply_notice(engine, "stripe", opened), "applying twice is applying once"
    assert _kinds(engine, payment) == ["reserve", "post", "dispute_opened"]

    lost = _notice(engine, NoticeKind.DISPUTE_LOST, payment_ref=None, gateway_reference=f"pi_{payment}")
    assert apply_notice(engine, "stripe", lost)
    assert _balance(engine, "disputes:stripe:EUR") == 0
    assert _balance(engine, "chargeback_losses:EUR") >= 10_000
    with engine.connect() as conn:
        (dispute,) = disputes_of_payment(conn, payment_id=payment)
        assert (dispute.status, dispute.amount_minor, dispute.reason) == ("lost", 10_000, "fraudulent")
        assert_invariants(conn)
    assert _events_of(engine, payment) == ["payment.disputed", "payment.dispute_closed"]


def test_a_won_dispute_gives_the_money_back_to_clearing(engine: Engine) -> None:
    with engine.begin() as conn:
        payment = _captured(conn, gateway="adyen")
    clearing_before = _balance(engine, "gateway_clearing:adyen:EUR")
    assert apply_notice(engine, "adyen", _notice(engine, NoticeKind.DISPUTE_OPENED, payment_ref=str(payment),
                                                 gateway="adyen", operation_reference="cb_1"))
    assert apply_notice(engine, "adyen", _notice(engine, NoticeKind.DISPUTE_WON, payment_ref=str(payment),
                                                 gateway="adyen", operation_reference="cb_1"))
    assert _balance(engine, "gateway_clearing:adyen:EUR") == clearing_before
    assert _kinds(engine, payment) == ["reserve", "post", "dispute_opened", "dispute_won"]


def test_a_decision_that_outruns_its_opening_waits_for_it(engine: Engine) -> None:
    with engine.begin() as conn:
        payment = _captured(conn)
    won = _notice(engine, NoticeKind.DISPUTE_WON, payment_ref=str(payment), operation_reference="dp_9")
    assert not apply_notice(engine, "stripe", won)
    with engine.connect() as conn:
        waiting = get_notice(conn, gateway="stripe", event_id=won)
    assert waiting is not None and waiting.applied_at is None and waiting.payment_id == payment
    assert waiting.last_error == "the dispute's opening has not arrived yet"
    assert _kinds(engine, payment) == ["reserve", "post"]

    _notice(engine, NoticeKind.DISPUTE_OPENED, payment_ref=str(payment), operation_reference="dp_9")
    applied, _ = apply_pending(engine, limit=500)
    assert applied >= 2
    assert _kinds(engine, payment) == ["reserve", "post", "dispute_opened", "dispute_won"]


def test_an_event_for_an_unknown_payment_is_kept_and_applied_once_the_payment_exists(engine: Engine) -> None:
    unknown = _notice(engine, NoticeKind.DISPUTE_OPENED, payment_ref=None, gateway_reference="pi_not_yet")
    assert not apply_notice(engine, "stripe", unknown)
    with engine.connect() as conn:
        kept = get_notice(conn, gateway="stripe", event_id=unknown)
    assert kept is not None and kept.applied_at is None and kept.payment_id is None and kept.apply_attempts == 1
    with engine.begin() as conn:
        payment = _captured(conn)
        conn.execute(text("UPDATE payments SET gateway_reference = 'pi_not_yet' WHERE id = :id"), {"id": payment})
    assert apply_notice(engine, "stripe", unknown)
    assert _kinds(engine, payment) == ["reserve", "post", "dispute_opened"]


def test_a_dispute_of_an_uncaptured_payment_waits(engine: Engine) -> None:
    with engine.begin() as conn:
        payment = make_payment(conn, merchant_id=make_merchant(conn), amount_minor=500, currency="EUR")
        conn.execute(text("UPDATE payments SET gateway = 'stripe' WHERE id = :id"), {"id": payment})
    early = _notice(engine, NoticeKind.DISPUTE_OPENED, payment_ref=str(payment), amount_minor=500)
    assert not apply_notice(engine, "stripe", early)
    assert _kinds(engine, payment) == []


def test_an_outcome_the_saga_reads_is_linked_to_its_payment_and_moves_nothing(engine: Engine) -> None:
    with engine.begin() as conn:
        payment = _captured(conn, gateway="adyen")
    captured = _notice(engine, NoticeKind.CAPTURED, payment_ref=str(payment), gateway="adyen")
    assert apply_notice(engine, "adyen", captured)
    with engine.connect() as conn:
        linked = get_notice(conn, gateway="adyen", event_id=captured)
    assert linked is not None and linked.payment_id == payment and linked.applied_at is not None
    assert _kinds(engine, payment) == ["reserve", "post"]
    assert _events_of(engine, payment) == []


def test_a_failed_refund_tells_the_merchant(engine: Engine) -> None:
    with engine.begin() as conn:
        payment = _captured(conn, gateway="adyen")
    assert apply_notice(engine, "adyen", _notice(engine, NoticeKind.REFUND_FAILED, payment_ref=str(payment),
                                                 gateway="adyen"))
    assert _events_of(engine, payment) == ["payment.refund_failed"]


def test_a_dispute_reference_already_recorded_for_another_payment_is_not_applied_to_this_one(engine: Engine) -> None:
    with engine.begin() as conn:
        first, second = _captured(conn), _captured(conn)
    assert apply_notice(engine, "stripe", _notice(engine, NoticeKind.DISPUTE_OPENED, payment_ref=str(first),
                                                  operation_reference="dp_shared"))
    clash = _notice(engine, NoticeKind.DISPUTE_OPENED, payment_ref=str(second), operation_reference="dp_shared")
    assert not apply_notice(engine, "stripe", clash)
    with engine.connect() as conn:
        kept = get_notice(conn, gateway="stripe", event_id=clash)
    assert kept is not None and kept.last_error == f"dispute dp_shared is recorded for payment {first}, not this one"
    assert _kinds(engine, second) == ["reserve", "post"]
