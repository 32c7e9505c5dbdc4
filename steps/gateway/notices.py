"""What a gateway's webhook tells us, in the saga's words: one ``GatewayNotice`` per event (a Stripe event, an Adyen
NotificationRequestItem), after its signature was checked.

A ``WebhookSource`` (the Stripe and Adyen adapters) turns a raw request into notices, or refuses it with
``WebhookRejected`` (missing, forged or stale signature; a body that is not the gateway's shape). The webhook route
stores each notice once by ``(gateway, event_id)`` and applies it (saga/webhooks.py); the Adyen adapter's ``lookup``
answers from the notices stored, since Adyen has no read API.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import Engine, select

from store.notices import StoredNotice, notices_of_payment
from store.schema import payments

__all__ = [
    "GatewayNotice", "NoticeKind", "NoticeReader", "WebhookRejected", "WebhookSource", "as_notice", "notice_reader",
]


class NoticeKind(enum.StrEnum):
    AUTHORISED = "authorised"  # Adyen AUTHORISATION success=true; Stripe payment_intent.amount_capturable_updated
    AUTHORISATION_FAILED = "authorisation_failed"  # Adyen AUTHORISATION success=false; Stripe payment_failed
    CAPTURED = "captured"  # Adyen CAPTURE success=true; Stripe payment_intent.succeeded
    CAPTURE_FAILED = "capture_failed"  # Adyen CAPTURE_FAILED (or CAPTURE success=false)
    CANCELLED = "cancelled"  # Adyen CANCELLATION success=true; Stripe payment_intent.canceled
    REFUNDED = "refunded"  # Adyen REFUND success=true; Stripe charge.refunded
    REFUND_FAILED = "refund_failed"  # Adyen REFUND_FAILED (or REFUND success=false); Stripe refund.failed
    DISPUTE_OPENED = "dispute_opened"  # Adyen CHARGEBACK / NOTIFICATION_OF_CHARGEBACK; Stripe charge.dispute.created
    DISPUTE_WON = "dispute_won"  # Adyen CHARGEBACK_REVERSED; Stripe charge.dispute.closed status=won
    DISPUTE_LOST = "dispute_lost"  # Stripe charge.dispute.closed status=lost (Adyen: the CHARGEBACK stands)
    OTHER = "other"  # an event we do not act on: stored, never applied


@dataclass(frozen=True)
class GatewayNotice:
    """One webhook event, verified and normalised.

    ``event_id`` is unique per gateway and stable across redeliveries (Stripe: the event id; Adyen, which has none:
    ``{eventCode}:{pspReference}:{success}``). ``payment_id`` is our payment id as the gateway echoes it (Stripe
    ``metadata.payment_id``, Adyen ``merchantReference``), None when the event does not carry it.
    ``gateway_reference`` is the payment at the gateway (Stripe PaymentIntent id, Adyen pspReference of the
    payment: ``originalReference`` on a modification); ``operation_reference`` is the operation or object the event
    is about (Adyen modification pspReference, Stripe refund or dispute id). Amounts are integers in minor units.
    ``payload`` is the raw event, as stored (it carries no card data).
    """

    gateway: str
    event_id: str
    kind: NoticeKind
    occurred_at_ms: int
    payment_id: str | None = None
    gateway_reference: str | None = None
    operation_reference: str | None = None
    amount_minor: int | None = None
    currency: str | None = None
    reason: str | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)


class WebhookRejected(Exception):
    """The request is not a genuine, fresh event of this gateway; the message says why (answered 400)."""


@runtime_checkable
class WebhookSource(Protocol):
    name: str

    def read_webhook(self, body: bytes, headers: Mapping[str, str]) -> list[GatewayNotice]:
        """Verify the signature (of the request, or of each item) and return the notices; raise WebhookRejected.
        ``headers`` keys are lower-case."""
        ...


def as_notice(stored: StoredNotice) -> GatewayNotice:
    """A stored notice as the adapters read it."""
    return GatewayNotice(
        gateway=stored.gateway, event_id=stored.event_id, kind=NoticeKind(stored.kind),
        occurred_at_ms=int(stored.occurred_at.timestamp() * 1000), payment_id=stored.payment_ref,
        gateway_reference=stored.gateway_reference, operation_reference=stored.operation_reference,
        amount_minor=stored.amount_minor, currency=stored.currency, reason=stored.reason, payload=stored.payload)


# What an adapter without a read API (Adyen) is given to learn outcomes: payment id -> its stored notices.
NoticeReader = Callable[[str], Sequence[GatewayNotice]]


def notice_reader(engine: Engine) -> NoticeReader:
    """Reads the notices stored for a payment (by the id the gateway echoes, or by the payment's recorded
    reference at its gateway), oldest first."""

    def read(payment_id: str) -> list[GatewayNotice]:
        with engine.connect() as conn:
            row = conn.execute(select(payments.c.gateway, payments.c.gateway_reference)
                               .where(payments.c.id == int(payment_id))).first()
            if row is None or row.gateway is None:
                return []
            stored = notices_of_payment(conn, gateway=row.gateway, payment_ref=payment_id,
                                        gateway_reference=row.gateway_reference)
        return [as_notice(s) for s in stored]

    return read
