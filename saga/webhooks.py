"""Gateway webhooks in: verify, store once, apply.

``receive`` is what POST /v1/webhooks/{gateway} does: the gateway's adapter verifies the request and turns it into
notices (steps.gateway.notices); each is stored once by (gateway, event_id), so a redelivery changes nothing; each
new one is then applied. ``apply_notice`` is idempotent and safe to call again (the payment-status sync calls it for
every notice still unapplied):

| notice                                    | applied as                                                          |
|-------------------------------------------|---------------------------------------------------------------------|
| authorised, authorisation_failed,         | linked to its payment. The saga reads them through the adapter's    |
| captured, capture_failed, cancelled,      | ``lookup`` (Adyen has no read API), and the sync replays a payment  |
| refunded, other                           | whose execution ended before the outcome came (saga.sync)           |
| refund_failed                             | a `payment.refund_failed` event for the merchant and an error log   |
| dispute_opened                            | the dispute recorded, its amount moved to the disputes account      |
|                                           | (ledger.posting.dispute), a `payment.disputed` event                |
| dispute_won / dispute_lost                | the dispute decided, the money back to clearing / to losses,        |
|                                           | a `payment.dispute_closed` event                                    |

A notice that cannot apply yet (its payment is unknown: the event outran the saga's own record; a dispute of a
payment whose capture is not posted yet; a decision before its opening) stays unapplied with the reason, and is
tried again by the next sync, never answered with a 5xx.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, select
from ulid import ULID

from core import observability
from core import telemetry_names as names
from ledger.posting import dispute
from steps.gateway.notices import GatewayNotice, NoticeKind, WebhookSource
from steps.operations.refund import settle_from_gateway
from store.disputes import close_dispute, dispute_by_reference, open_dispute
from store.notices import StoredNotice, get_notice, insert_notice, mark_applied, mark_deferred, unapplied_notices
from store.operations import operations_of_payment
from store.outbox import insert_event
from store.payments import Payment, get_payment
from store.schema import payments

__all__ = ["Received", "apply_notice", "apply_pending", "receive"]

logger = observability.logger(names.SERVICE_WEBHOOKS)

# The notices the saga itself consumes (through lookup): applying one links it to its payment, nothing more.
_READ_BY_THE_SAGA = frozenset({NoticeKind.AUTHORISED, NoticeKind.AUTHORISATION_FAILED, NoticeKind.CAPTURED,
                               NoticeKind.CAPTURE_FAILED, NoticeKind.CANCELLED, NoticeKind.REFUNDED,
                               NoticeKind.OTHER})


@dataclass(frozen=True)
class Received:
    stored: int  # new notices
    duplicates: int  # redeliveries of notices stored before
    applied: int  # of the new ones, applied now (the rest wait for their payment)


def receive(engine: Engine, source: WebhookSource, body: bytes, headers: Mapping[str, str]) -> Received:
    """Verify (WebhookRejected propagates: nothing stored), store each notice once, apply the new ones."""
    notices = source.read_webhook(body, {k.lower(): v for k, v in headers.items()})
    fresh: list[GatewayNotice] = []
    with engine.begin() as conn:  # all of the request's notices, or none
        for notice in notices:
            if _store(conn, notice):
                fresh.append(notice)
    # Stored: from here on the gateway is answered 200 whatever applying does (a failure is logged, and the notice
    # waits for the sync), so a bug or a database hiccup in applying never turns into the gateway's redelivery storm.
    try:
        applied = sum(1 for notice in fresh if apply_notice(engine, notice.gateway, notice.event_id))
        if applied:  # what these made possible (a decision that came before its dispute's opening) applies now too
            apply_pending(engine, payment_ids=_payments_of(engine, fresh))
    except Exception:
        logger.exception("stored webhook notices could not be applied now; the sync tries again")
        applied = 0
    return Received(stored=len(fresh), duplicates=len(notices) - len(fresh), applied=applied)


def _payments_of(engine: Engine, notices: list[GatewayNotice]) -> list[int]:
    with engine.connect() as conn:
        stored = [get_notice(conn, gateway=n.gateway, event_id=n.event_id) for n in notices]
    return sorted({s.payment_id for s in stored if s is not None and s.payment_id is not None})


def _store(conn: Connection, notice: GatewayNotice) -> bool:
    return insert_notice(
        conn, gateway=notice.gateway, event_id=notice.event_id, kind=notice.kind.value,
        occurred_at=datetime.fromtimestamp(notice.occurred_at_ms / 1000, tz=UTC), payload=dict(notice.payload),
        payment_ref=notice.payment_id, gateway_reference=notice.gateway_reference,
        operation_reference=notice.operation_reference, amount_minor=notice.amount_minor,
        currency=notice.currency.upper() if notice.currency else None, reason=notice.reason,
    ).applied


def apply_pending(engine: Engine, *, limit: int = 100, payment_ids: list[int] | None = None) -> tuple[int, int]:
    """Try the notices still unapplied (at most `limit`; of these payments, if given), again while a pass applies any
    (a decision that arrived before its dispute's opening applies in the pass after the opening's): (applied now,
    still waiting)."""
    with engine.connect() as conn:
        waiting = unapplied_notices(conn, limit=limit, payment_ids=payment_ids)
    applied_total = 0
    while waiting:
        left = [(gateway, event_id) for gateway, event_id in waiting if not apply_notice(engine, gateway, event_id)]
        if len(left) == len(waiting):
            break
        applied_total += len(waiting) - len(left)
        waiting = left
    return applied_total, len(waiting)


def apply_notice(engine: Engine, gateway: str, event_id: str) -> bool:
    """Apply one stored notice if it can be now; True once it is applied (now or before)."""
    with engine.begin() as conn:
        notice = get_notice(conn, gateway=gateway, event_id=event_id, for_update=True)
        if notice is None:
            raise ValueError(f"no notice {gateway}/{event_id}")
        if notice.applied_at is not None:
            return True
        payment = _payment_of(conn, notice)
        if payment is None:
            mark_deferred(conn, gateway=gateway, event_id=event_id, payment_id=None,
                          why="no payment matches this event yet")
            return False
        with observability.correlated(payment.id, payment.merchant_id):  # what it logs names the payment
            why_not = _apply(conn, notice, payment)
        if why_not is not None:
            mark_deferred(conn, gateway=gateway, event_id=event_id, payment_id=payment.id, why=why_not)
            return False
        mark_applied(conn, gateway=gateway, event_id=event_id, payment_id=payment.id)
        return True


def _payment_of(conn: Connection, notice: StoredNotice) -> Payment | None:
    """The payment the event is about: by the id the gateway echoed, else by our record of its reference."""
    if notice.payment_id is not None:
        return get_payment(conn, payment_id=notice.payment_id)
    ref = notice.payment_ref
    if ref is not None and ref.isdigit() and int(ref) < 2**63:
        found = get_payment(conn, payment_id=int(ref))
        if found is not None and found.gateway == notice.gateway:
            return found
    if notice.gateway_reference is None:
        return None
    payment_id = conn.execute(select(payments.c.id).where(payments.c.gateway == notice.gateway,
                                                          payments.c.gateway_reference == notice.gateway_reference)
                              ).scalar_one_or_none()
    return None if payment_id is None else get_payment(conn, payment_id=int(payment_id))


def _event(conn: Connection, payment: Payment, event_type: str, **details: Any) -> None:
    insert_event(conn, event_id=str(ULID()), payment_id=payment.id, event_type=event_type,
                 payload={"type": event_type, "payment_id": str(payment.id), "merchant_id": payment.merchant_id,
                          "currency": payment.currency, "order_reference": payment.order_ref, **details})


def _apply(conn: Connection, notice: StoredNotice, payment: Payment) -> str | None:
    """Apply `notice` to `payment` inside the caller's transaction; why it cannot apply yet, or None."""
    kind = NoticeKind(notice.kind)
    if kind in (NoticeKind.REFUNDED, NoticeKind.REFUND_FAILED) and _settles_a_refund(conn, notice, payment):
        return None
    if kind in _READ_BY_THE_SAGA:
        return None
    if kind is NoticeKind.REFUND_FAILED:
        logger.error("the gateway refused a refund", extra={"payment_id": payment.id, "gateway": notice.gateway,
                                                            "reason": notice.reason})
        _event(conn, payment, "payment.refund_failed", reason=notice.reason,
               amount_minor=notice.amount_minor)
        return None
    reference = notice.operation_reference or notice.event_id
    if kind is NoticeKind.DISPUTE_OPENED:
        return _open(conn, notice, payment, reference)
    return _close(conn, notice, payment, reference, "won" if kind is NoticeKind.DISPUTE_WON else "lost")


def _settles_a_refund(conn: Connection, notice: StoredNotice, payment: Payment) -> bool:
    """A refund's outcome for one of the payment's refund operations (matched by the gateway's id of the refund):
    settled here, by the same code the refund's steps run (steps.operations.refund). False when it names none (the
    saga's own full refund, or a refund whose id the step has not recorded yet: the sync settles that one)."""
    if notice.operation_reference is None:
        return False
    refund = next((o for o in operations_of_payment(conn, payment_id=payment.id, kind="refund")
                   if o.gateway_reference == notice.operation_reference), None)
    if refund is None:
        return False
    succeeded = NoticeKind(notice.kind) is NoticeKind.REFUNDED
    settle_from_gateway(conn, refund.id, succeeded=succeeded, reason=notice.reason,
                        gateway_reference=notice.operation_reference)
    return True


def _open(conn: Connection, notice: StoredNotice, payment: Payment, reference: str) -> str | None:
    amount = notice.amount_minor or payment.captured_amount_minor
    if amount is None:
        return "a dispute with no amount, of a payment whose capture is not recorded yet"
    if notice.currency is not None and notice.currency != payment.currency:
        return f"a dispute in {notice.currency} of a payment in {payment.currency}"
    other = dispute_by_reference(conn, gateway=notice.gateway, reference=reference)
    if other is not None and other.payment_id != payment.id:
        return f"dispute {reference} is recorded for payment {other.payment_id}, not this one"
    assert payment.gateway is not None, "a captured payment records its gateway"
    posted = dispute(conn, payment_id=payment.id, kind="dispute_opened", gateway=payment.gateway,
                     amount_minor=amount, description=f"dispute {reference} opened")
    if not posted.in_effect:
        return f"the ledger cannot hold the dispute yet ({posted.reason.value})"
    if open_dispute(conn, gateway=notice.gateway, reference=reference, payment_id=payment.id, amount_minor=amount,
                    currency=payment.currency, reason=notice.reason).applied:
        _event(conn, payment, "payment.disputed", dispute_reference=reference, amount_minor=amount,
               reason=notice.reason)
    return None


def _close(conn: Connection, notice: StoredNotice, payment: Payment, reference: str, status: str) -> str | None:
    opened = dispute_by_reference(conn, gateway=notice.gateway, reference=reference)
    if opened is None or opened.payment_id != payment.id:
        return "the dispute's opening has not arrived yet"
    if not close_dispute(conn, gateway=notice.gateway, reference=reference, status=status).applied:
        return None  # decided before (a second decision of one dispute changes nothing)
    assert payment.gateway is not None, "a disputed payment records its gateway"
    decided = dispute(conn, payment_id=payment.id, kind=f"dispute_{status}", gateway=payment.gateway,
                      amount_minor=opened.amount_minor, description=f"dispute {reference} {status}")
    assert decided.in_effect, f"the ledger refused the {status} dispute {reference}: {decided.reason}"
    _event(conn, payment, "payment.dispute_closed", dispute_reference=reference, outcome=status,
           amount_minor=opened.amount_minor)
    return None
