"""The gateway port: what a saga step may ask of a payment gateway, and what each failure means for the
caller.

Idempotency keys are derived here, in one place, from the payment id (property 11: a payment is never
authorized or captured twice under different keys):

| operation | idempotency key              | why                                                           |
|-----------|------------------------------|---------------------------------------------------------------|
| authorize | ``{payment_id}``             | DESIGN 6: the payment id is the gateway's key, the second net |
| capture   | ``{payment_id}:capture``     | one capture per payment (full or partial amount)              |
| void      | ``{payment_id}:void``        | cancelling an authorization is one act                        |
| refund    | ``{payment_id}:refund``      | the payment saga's RefundCapture: one refund of the capture   |
| refund    | ``{payment_id}:refund:``     | one of several (partial) refunds, each its own state machine: |
| with id   | ``{refund_id}``              | our refund id makes each its own act, and a resend the same   |

Adapters send these keys as the gateway's idempotency key (Stripe and Adyen: the ``Idempotency-Key`` header)
and pass ``payment_id`` as the gateway-side reference (Stripe metadata, Adyen merchantReference) so that
``lookup`` can find the payment after an unknown outcome. A refund with a ``refund_id`` also sends the refund id as
the refund's own reference (Stripe ``metadata[refund_id]``, Adyen the refund request's ``reference``) so that
``lookup_refund`` and the refund's webhook can name that one refund.

What an exception tells the caller:

- ``GatewayUnreachable``: the gateway certainly did not process the request (connect error, 503/429). Retry
  with the same key whenever convenient.
- ``GatewayOutcomeUnknown``: the request left, no usable answer came back (read timeout, dropped connection,
  other 5xx). It may have taken effect. Call ``lookup`` (or retry with the same key, which replays the first
  answer) before deciding anything; never treat it as a failure.
- ``GatewayRejected``: the gateway refused the request as invalid (4xx): a bug in our request or our state
  machine (e.g. capturing a voided payment, reusing a key with another amount). Retrying will not help.

A decline is not an exception: it is a business result (``GatewayStatus.DECLINED`` with a ``DeclineReason``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from core.money import check_currency_code


class Operation(enum.StrEnum):
    AUTHORIZE = "authorize"
    CAPTURE = "capture"
    VOID = "void"
    REFUND = "refund"


class GatewayStatus(enum.StrEnum):
    """A payment's state at the gateway, and the status an operation answers with."""

    AUTHORIZED = "authorized"
    DECLINED = "declined"
    CAPTURED = "captured"
    # Acknowledged only (Adyen answers "received"); the outcome comes later (webhook CAPTURE / CAPTURE_FAILED).
    CAPTURE_SUBMITTED = "capture_submitted"
    CAPTURE_FAILED = "capture_failed"
    VOIDED = "voided"
    REFUNDED = "refunded"
    # A refund (with a refund_id) accepted only: Adyen "received", Stripe "pending"/"requires_action"; the outcome
    # comes later (webhook, lookup_refund).
    REFUND_PENDING = "refund_pending"
    # The gateway refused or failed a refund: no money went back (a business outcome, not a GatewayRejected).
    REFUND_FAILED = "refund_failed"


class DeclineReason(enum.StrEnum):
    """Why an authorization was declined; the saga maps these to its business errors. Adapters map any other
    gateway decline code to CARD_DECLINED and keep the raw code in ``decline_detail``."""

    CARD_DECLINED = "card_declined"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    FRAUDULENT = "fraudulent"
    EXPIRED_CARD = "expired_card"


def idempotency_key(operation: Operation, payment_id: str, refund_id: str | None = None) -> str:
    """The gateway idempotency key of ``operation`` on ``payment_id`` (see the module docstring's table);
    ``refund_id`` (refunds only) names one of several refunds of the payment."""
    if not payment_id or ":" in payment_id:
        raise ValueError(f"payment_id must be non-empty and contain no ':' (got {payment_id!r})")
    if refund_id is not None:
        if operation is not Operation.REFUND:
            raise ValueError(f"a refund_id names a refund, not a {operation.value}")
        check_refund_id(refund_id)
        return f"{payment_id}:{operation.value}:{refund_id}"
    if operation is Operation.AUTHORIZE:
        return payment_id
    return f"{payment_id}:{operation.value}"


def check_refund_id(refund_id: str) -> None:
    """A refund id is our Snowflake id as a decimal string: it goes into keys, Stripe metadata and Adyen references,
    so nothing else may pass (a ':' would make two keys collide)."""
    if not isinstance(refund_id, str) or not refund_id.isascii() or not refund_id.isdigit() or len(refund_id) > 19:
        raise ValueError(f"refund_id must be a decimal string of at most 19 digits (got {refund_id!r})")


def check_money(amount_minor: int, currency: str) -> None:
    """Reject what a gateway must never see: a non-int (float, bool) or non-positive amount, a bad currency."""
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise ValueError(f"amount_minor must be a positive int in minor units (got {amount_minor!r})")
    check_currency_code(currency)


@dataclass(frozen=True)
class GatewayResult:
    """The gateway's answer to one operation.

    ``gateway_reference`` identifies the payment at the gateway (Stripe PaymentIntent id, Adyen pspReference of
    the payment); ``operation_reference`` identifies this operation (Stripe refund id, Adyen modification
    pspReference, which the webhook of an asynchronous capture refers to), equal to ``gateway_reference`` where
    the gateway has no separate one. ``amount_minor`` is the amount this operation concerned (authorized,
    captured, refunded). ``replayed`` is True when the gateway answered from its idempotency record rather than
    acting again.
    """

    operation: Operation
    status: GatewayStatus
    payment_id: str
    idempotency_key: str
    gateway_reference: str
    operation_reference: str
    amount_minor: int
    currency: str
    decline_reason: DeclineReason | None = None
    decline_detail: str | None = None
    replayed: bool = False


@dataclass(frozen=True)
class RefundSnapshot:
    """One refund (made with a ``refund_id``) at the gateway, as ``lookup_refund`` finds it. ``status`` is REFUNDED,
    REFUND_PENDING or REFUND_FAILED (then ``failure_reason`` is the gateway's word, where it gave one);
    ``operation_reference`` is the gateway's id of the refund."""

    refund_id: str
    operation_reference: str
    status: GatewayStatus
    amount_minor: int
    currency: str
    failure_reason: str | None = None


@dataclass(frozen=True)
class PaymentSnapshot:
    """The state of one payment at the gateway, as ``lookup`` finds it."""

    payment_id: str
    gateway_reference: str
    status: GatewayStatus
    amount_minor: int
    currency: str
    captured_minor: int
    refunded_minor: int
    decline_reason: DeclineReason | None = None


class GatewayError(Exception):
    """Base of the gateway's failures; ``operation`` and ``payment_id`` say which call failed."""

    def __init__(self, message: str, *, operation: Operation | None = None, payment_id: str | None = None) -> None:
        super().__init__(message)
        self.operation = operation
        self.payment_id = payment_id


class GatewayUnreachable(GatewayError):
    """Not processed, certainly: safe to retry with the same idempotency key."""


class GatewayOutcomeUnknown(GatewayError):
    """Sent, no usable answer: it may have taken effect. Look up (or replay the same key) before deciding."""


class GatewayRejected(GatewayError):
    """A 4xx: the gateway refused our request as invalid. ``code`` is the gateway's error code."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str,
        operation: Operation | None = None,
        payment_id: str | None = None,
    ) -> None:
        super().__init__(message, operation=operation, payment_id=payment_id)
        self.status_code = status_code
        self.code = code


class GatewayNotConfigured(GatewayError):
    """The selected gateway has no adapter or lacks its settings; raised by ``gateway_for``."""


@runtime_checkable
class Gateway(Protocol):
    """A payment gateway. Every call is idempotent under the key ``idempotency_key(operation, payment_id)``.

    ``gateway_reference`` is the one the authorization answered (or ``lookup`` found): Stripe captures, cancels
    and refunds a PaymentIntent by its id, Adyen modifies a payment by its pspReference, so the saga keeps it.

    Authorization is always manual-capture: money moves only on ``capture``. Implementations never retry on
    their own (the workflow's Retry does, with bounds) and bound every network wait.
    """

    name: str
    # Whether lookup knows every authorization the gateway took (sandbox, Stripe: they answer from their own state).
    # Adyen tells outcomes by webhook: its lookup can miss an authorization whose notice has not arrived, so a
    # compensation cancels by our reference instead of trusting a None.
    lookup_is_complete: bool

    def authorize(self, *, payment_id: str, amount_minor: int, currency: str, card_token: str) -> GatewayResult:
        """AUTHORIZED or DECLINED (with a DeclineReason)."""
        ...

    def capture(self, *, payment_id: str, gateway_reference: str, amount_minor: int, currency: str) -> GatewayResult:
        """CAPTURED, CAPTURE_SUBMITTED (final later: lookup/webhook) or CAPTURE_FAILED. ``amount_minor`` at
        most the authorized amount (partial capture)."""
        ...

    def cancel(self, *, payment_id: str, gateway_reference: str) -> GatewayResult:
        """VOIDED: cancels an authorization that was not captured. An empty ``gateway_reference`` (never learned)
        cancels by ``payment_id`` where the gateway allows it (Adyen's /cancels by merchant reference)."""
        ...

    def refund(
        self,
        *,
        payment_id: str,
        gateway_reference: str,
        amount_minor: int,
        currency: str,
        refund_id: str | None = None,
    ) -> GatewayResult:
        """Gives back up to what is captured and not refunded yet (beyond: GatewayRejected).

        Without ``refund_id`` (the payment saga's RefundCapture, key ``{payment_id}:refund``): REFUNDED. With one
        (one of several partial refunds, key ``{payment_id}:refund:{refund_id}``, the refund id sent as the refund's
        reference): REFUNDED (money went back), REFUND_PENDING (accepted, outcome later: ``lookup_refund``) or
        REFUND_FAILED (the gateway refused it; its reason in ``decline_detail``). ``operation_reference`` is the
        gateway's id of the refund."""
        ...

    def lookup_refund(
        self, *, payment_id: str, gateway_reference: str, refund_id: str, operation_reference: str | None = None
    ) -> RefundSnapshot | None:
        """The refund made with ``refund_id``, or None when the gateway never took it (then sending it again with
        the same key is safe). ``operation_reference`` (the gateway's id of the refund, when the refund answered)
        lets an adapter read it directly (Stripe: retrieve the refund). Adyen has no read API: its adapter answers
        from the stored REFUND notices and from the refunds Adyen "received" (REFUND_PENDING)."""
        ...

    def lookup(self, *, payment_id: str, gateway_reference: str | None = None) -> PaymentSnapshot | None:
        """The payment's state at the gateway, or None when the gateway never took its authorization (then an
        authorize with the same key is safe to send). ``gateway_reference``, when the saga recorded it, lets an
        adapter read the payment directly (Stripe: retrieve the PaymentIntent, strongly consistent) instead of
        finding it by ``payment_id`` (Stripe: search by ``metadata.payment_id``). Adyen has no read API: its adapter
        answers from the webhook notices stored (steps/gateway/notices.py) and the answers it recorded."""
        ...

    def close(self) -> None:
        """Release network resources (connection pools)."""
        ...
