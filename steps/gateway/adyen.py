"""The Gateway port over Adyen's Checkout API v71, with Adyen's official Python SDK (``Adyen`` 15.x), and Adyen's
standard webhooks (``WebhookSource``).

What each port operation sends (``merchantAccount`` on every request; the idempotency key of steps/gateway/port.py as
``Idempotency-Key``, at most 64 characters as Adyen allows):

| port       | Adyen                                                    | answer → result                              |
|------------|----------------------------------------------------------|----------------------------------------------|
| authorize  | ``POST /payments``: ``reference`` = payment_id, stored   | Authorised → AUTHORIZED; Refused (Cancelled, |
|            | card (``storedPaymentMethodId`` = card token, ContAuth,  | Error) → DECLINED; Pending/Received →        |
|            | CardOnFile), ``additionalData.manualCapture = "true"``   | GatewayOutcomeUnknown (AUTHORISATION webhook |
|            |                                                          | tells the outcome)                           |
| capture    | ``POST /payments/{pspReference}/captures``               | received → CAPTURE_SUBMITTED; CAPTURE /      |
|            |                                                          | CAPTURE_FAILED webhook tells the outcome     |
| cancel     | ``POST /payments/{pspReference}/cancels``, or without a  | received → VOIDED (Adyen does not refuse the |
|            | reference ``POST /cancels`` by ``paymentReference``      | cancel of an uncaptured authorization)       |
| refund     | ``POST /payments/{pspReference}/refunds``                | received → REFUNDED (a REFUND_FAILED or      |
|            |                                                          | REFUND success=false webhook may follow)     |
| refund     | the same, ``reference`` = refund_id (the REFUND webhook  | received → REFUND_PENDING; the REFUND /      |
| (with id)  | echoes it as merchantReference)                          | REFUND_FAILED webhook tells the outcome      |
| lookup     | nothing: Adyen has no read API                           | from the webhook notices stored (below)      |
| lookup_    | nothing                                                  | from the REFUND notices stored, else from    |
| refund     |                                                          | the refunds Adyen "received" (below)         |

Declines: ``refusalReasonCode`` (else ``refusalReason``) → DeclineReason: 12 Not enough balance → INSUFFICIENT_FUNDS,
6 Expired Card → EXPIRED_CARD, 20 FRAUD / 22 FRAUD-CANCELLED / 14 Acquirer Fraud / 31 Issuer Suspected Fraud →
FRAUDULENT, anything else → CARD_DECLINED; ``decline_detail`` keeps Adyen's raw ``refusalReason``.

Failures (see steps/gateway/port.py for what each means to the caller):

| what happened                                                  | raised                  |
|----------------------------------------------------------------|-------------------------|
| connection refused / connect timeout / TLS handshake failed    | GatewayUnreachable      |
| 503 or 429 (nothing processed)                                 | GatewayUnreachable      |
| read timeout, connection dropped mid-answer                    | GatewayOutcomeUnknown   |
| any other 5xx, or a 2xx whose body is not the contract         | GatewayOutcomeUnknown   |
| other 4xx (422 validation, 401 API key, 403 merchant account)  | GatewayRejected, ``code`` = Adyen's ``errorCode`` |

The SDK sends with ``requests`` (forced): every wait is bounded by ``(connect_timeout_ms, timeout_ms)``; neither the
SDK nor ``requests`` retries (the workflow's Retry does, with the same key). Adyen's answers do not say whether they
were replayed from its idempotency record (the SDK hides the headers), so ``GatewayResult.replayed`` is always False.

``lookup`` (no read API at Adyen): the payment's state is what the stored webhook notices say, ``notices(payment_id)``,
oldest first, taken in event time order:

- the latest of AUTHORISED / AUTHORISATION_FAILED / CAPTURED / CAPTURE_FAILED / CANCELLED / REFUNDED decides the
  status (AUTHORIZED, DECLINED, CAPTURED, CAPTURE_FAILED, VOIDED, REFUNDED); REFUND_FAILED and disputes do not;
- ``amount_minor``/``currency`` come from the AUTHORISATION; ``captured_minor`` sums the CAPTURED amounts and
  ``refunded_minor`` the REFUNDED ones, less those a later CAPTURE_FAILED / REFUND_FAILED of the same modification
  undid;
- no notice naming the payment (an AUTHORISATION, or a modification's ``originalReference``) and no
  ``gateway_reference``: None (Adyen never told us of an authorization);
- a ``gateway_reference`` (the saga recorded the authorization's answer) but no notices yet: AUTHORIZED, with
  amount 0 and currency "" (unknown until the AUTHORISATION webhook arrives);
- a submitted capture whose webhook has not arrived reads AUTHORIZED: the caller retries until CAPTURED or
  CAPTURE_FAILED arrives.

``lookup_refund``: the refund's REFUND (success true → REFUNDED) or REFUND_FAILED / REFUND success false
(→ REFUND_FAILED, ``failure_reason`` = the notice's reason) notice, matched by its pspReference (the
``operation_reference`` the refund answered) or by its merchantReference (the refund id) on this payment's
originalReference; the latest one decides. Without a notice: REFUND_PENDING when the refund was "received" (the caller
gives its ``operation_reference``, or this adapter answered it), with the amount this adapter sent (0 and "" when
another process sent it: unknown until the webhook); None otherwise. A refund made under its refund id carries that id,
not the payment id, as merchantReference: its notices belong to the payment by originalReference (``_about``).

Webhooks (``read_webhook``): Adyen signs each NotificationRequestItem (``additionalData.hmacSignature``), checked with
the SDK's ``is_valid_hmac_notification`` against ``hmac_key``; a request with any item unsigned, forged or
unverifiable (no key configured) is refused whole. eventCode/success → NoticeKind: AUTHORISATION true/false →
AUTHORISED/AUTHORISATION_FAILED; CAPTURE true → CAPTURED, CAPTURE false or CAPTURE_FAILED → CAPTURE_FAILED;
CANCELLATION true (and TECHNICAL_CANCEL true: the cancel by merchant reference) → CANCELLED; REFUND true → REFUNDED,
REFUND false or REFUND_FAILED → REFUND_FAILED; CHARGEBACK / NOTIFICATION_OF_CHARGEBACK → DISPUTE_OPENED;
CHARGEBACK_REVERSED → DISPUTE_WON; anything else (a failed cancellation included) → OTHER.
"""

from __future__ import annotations

import binascii
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from Adyen.client import AdyenClient
from Adyen.exceptions import AdyenAPIResponseError
from Adyen.services.checkout import AdyenCheckoutApi
from Adyen.util import is_valid_hmac_notification
from urllib3.exceptions import ConnectTimeoutError

from steps.gateway.notices import GatewayNotice, NoticeKind, WebhookRejected
from steps.gateway.port import (
    DeclineReason,
    GatewayOutcomeUnknown,
    GatewayRejected,
    GatewayResult,
    GatewayStatus,
    GatewayUnreachable,
    Operation,
    PaymentSnapshot,
    RefundSnapshot,
    check_money,
    idempotency_key,
)

JsonDict = dict[str, Any]
API_VERSION = "v71"  # what Adyen 15.x speaks; the local Adyen server validates against this version's spec
MAX_IDEMPOTENCY_KEY = 64  # Adyen's limit
DEFAULT_CONNECT_TIMEOUT_MS = 500
# A stored card charged without the shopper never redirects, but v71 requires a returnUrl on every /payments.
RETURN_URL = "https://paysaga.invalid/adyen/return"

# refusalReasonCode → (Adyen's refusalReason, what it means to the saga).
_REFUSALS: dict[str, tuple[str, DeclineReason]] = {
    "2": ("Refused", DeclineReason.CARD_DECLINED),
    "6": ("Expired Card", DeclineReason.EXPIRED_CARD),
    "12": ("Not enough balance", DeclineReason.INSUFFICIENT_FUNDS),
    "14": ("Acquirer Fraud", DeclineReason.FRAUDULENT),
    "20": ("FRAUD", DeclineReason.FRAUDULENT),
    "22": ("FRAUD-CANCELLED", DeclineReason.FRAUDULENT),
    "31": ("Issuer Suspected Fraud", DeclineReason.FRAUDULENT),
}
_REFUSAL_BY_REASON = {reason.lower(): decline for reason, decline in _REFUSALS.values()}
_DECLINED_RESULTS = frozenset({"Refused", "Cancelled", "Error"})
_PENDING_RESULTS = frozenset({"Pending", "Received"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# The notices that decide a payment's status in lookup, and the status each means.
_STATUS_OF: dict[NoticeKind, GatewayStatus] = {
    NoticeKind.AUTHORISED: GatewayStatus.AUTHORIZED,
    NoticeKind.AUTHORISATION_FAILED: GatewayStatus.DECLINED,
    NoticeKind.CAPTURED: GatewayStatus.CAPTURED,
    NoticeKind.CAPTURE_FAILED: GatewayStatus.CAPTURE_FAILED,
    NoticeKind.CANCELLED: GatewayStatus.VOIDED,
    NoticeKind.REFUNDED: GatewayStatus.REFUNDED,
}
# The notices that decide a refund's outcome in lookup_refund.
_REFUND_OUTCOMES: dict[NoticeKind, GatewayStatus] = {
    NoticeKind.REFUNDED: GatewayStatus.REFUNDED,
    NoticeKind.REFUND_FAILED: GatewayStatus.REFUND_FAILED,
}
# eventCode → kind, whatever ``success`` says; the success-dependent ones are in ``_kind_of``.
_KIND_OF_EVENT: dict[str, NoticeKind] = {
    "CAPTURE_FAILED": NoticeKind.CAPTURE_FAILED,
    "REFUND_FAILED": NoticeKind.REFUND_FAILED,
    "CHARGEBACK": NoticeKind.DISPUTE_OPENED,
    "NOTIFICATION_OF_CHARGEBACK": NoticeKind.DISPUTE_OPENED,
    "CHARGEBACK_REVERSED": NoticeKind.DISPUTE_WON,
}
_KIND_OF_SUCCESS: dict[str, tuple[NoticeKind, NoticeKind]] = {  # eventCode → (success true, success false)
    "AUTHORISATION": (NoticeKind.AUTHORISED, NoticeKind.AUTHORISATION_FAILED),
    "CAPTURE": (NoticeKind.CAPTURED, NoticeKind.CAPTURE_FAILED),
    "CANCELLATION": (NoticeKind.CANCELLED, NoticeKind.OTHER),
    "TECHNICAL_CANCEL": (NoticeKind.CANCELLED, NoticeKind.OTHER),
    "REFUND": (NoticeKind.REFUNDED, NoticeKind.REFUND_FAILED),
}


def decline_reason_of(code: str | None, reason: str | None) -> DeclineReason:
    """Adyen's refusal (``refusalReasonCode``, else the ``refusalReason`` text) in the saga's words."""
    if code is not None and code in _REFUSALS:
        return _REFUSALS[code][1]
    if reason is not None:
        return _REFUSAL_BY_REASON.get(reason.strip().lower(), DeclineReason.CARD_DECLINED)
    return DeclineReason.CARD_DECLINED


class AdyenGateway:
    name = "adyen"
    lookup_is_complete = False  # outcomes arrive by webhook (see lookup)

    def __init__(
        self,
        *,
        api_key: str,
        merchant_account: str,
        checkout_url: str,
        timeout_ms: int,
        connect_timeout_ms: int = DEFAULT_CONNECT_TIMEOUT_MS,
        hmac_key: str | None = None,
        notices: Callable[[str], Sequence[GatewayNotice]],
    ) -> None:
        if not api_key or not merchant_account:
            raise ValueError("api_key and merchant_account are required")
        if timeout_ms <= 0 or connect_timeout_ms <= 0:
            raise ValueError("timeouts must be positive")
        if hmac_key is not None:
            try:
                bytes.fromhex(hmac_key)
            except ValueError:
                raise ValueError("hmac_key must be hex, as Adyen's Customer Area shows it") from None
        self._merchant_account = merchant_account
        self._hmac_key = hmac_key
        self._notices = notices
        # Refunds (with a refund id) Adyen "received" from this adapter: (payment_id, refund_id) → (pspReference,
        # amount_minor, currency), what lookup_refund tells before the webhook. A process's memory only: a caller in
        # another process passes the operation_reference it recorded.
        self._received_refunds: dict[tuple[str, str], tuple[str, int, str]] = {}
        self._received_lock = threading.Lock()
        platform, live_prefix = _platform_of(checkout_url)
        client = AdyenClient(
            xapikey=api_key,
            merchant_account=merchant_account,
            platform=platform,
            live_endpoint_prefix=live_prefix,
            http_force="requests",  # the one SDK transport that takes separate connect and read timeouts
            http_timeout=(connect_timeout_ms / 1000, timeout_ms / 1000),
        )
        checkout = AdyenCheckoutApi(client=client)
        base_url = _versioned(checkout_url)
        # The SDK has no endpoint setting: each service builds its URLs from its own baseUrl.
        checkout.payments_api.baseUrl = base_url
        checkout.modifications_api.baseUrl = base_url
        self._payments_api = checkout.payments_api
        self._modifications_api = checkout.modifications_api

    def close(self) -> None:
        """Nothing pooled to release: the SDK's requests transport opens a session per call."""

    def __enter__(self) -> AdyenGateway:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- the port ---------------------------------------------------------------------------------------------------

    def authorize(self, *, payment_id: str, amount_minor: int, currency: str, card_token: str) -> GatewayResult:
        check_money(amount_minor, currency)
        if not card_token:
            raise ValueError("card_token is required")
        request = {
            "merchantAccount": self._merchant_account,
            "reference": payment_id,
            "amount": {"value": amount_minor, "currency": currency},
            "paymentMethod": {"type": "scheme", "storedPaymentMethodId": card_token},
            # The port carries no shopper: the token is taken as stored for a shopper named after the payment.
            "shopperReference": f"paysaga-{payment_id}",
            "shopperInteraction": "ContAuth",
            "recurringProcessingModel": "CardOnFile",
            "additionalData": {"manualCapture": "true"},
            "returnUrl": RETURN_URL,
        }
        key = self._key(Operation.AUTHORIZE, payment_id)
        answer = self._send(
            Operation.AUTHORIZE, payment_id, lambda: self._payments_api.payments(request, idempotency_key=key)
        )
        return self._authorization(answer, payment_id, key, amount_minor, currency)

    def capture(self, *, payment_id: str, gateway_reference: str, amount_minor: int, currency: str) -> GatewayResult:
        check_money(amount_minor, currency)
        _require_reference(gateway_reference)
        request = self._modification_request(payment_id, amount_minor, currency)
        key = self._key(Operation.CAPTURE, payment_id)
        answer = self._send(
            Operation.CAPTURE,
            payment_id,
            lambda: self._modifications_api.capture_authorised_payment(request, gateway_reference, idempotency_key=key),
        )
        return self._modification(
            answer, operation=Operation.CAPTURE, status=GatewayStatus.CAPTURE_SUBMITTED, payment_id=payment_id, key=key,
            gateway_reference=gateway_reference, money=(amount_minor, currency),
        )

    def cancel(self, *, payment_id: str, gateway_reference: str) -> GatewayResult:
        key = self._key(Operation.VOID, payment_id)
        if gateway_reference:
            request = self._modification_request(payment_id, None, None)
            answer = self._send(
                Operation.VOID,
                payment_id,
                lambda: self._modifications_api.cancel_authorised_payment_by_psp_reference(
                    request, gateway_reference, idempotency_key=key
                ),
            )
        else:  # an authorization whose answer we never got: Adyen cancels it by our reference (technical cancel)
            request = {**self._modification_request(payment_id, None, None), "paymentReference": payment_id}
            answer = self._send(
                Operation.VOID,
                payment_id,
                lambda: self._modifications_api.cancel_authorised_payment(request, idempotency_key=key),
            )
        return self._modification(
            answer, operation=Operation.VOID, status=GatewayStatus.VOIDED, payment_id=payment_id, key=key,
            gateway_reference=gateway_reference, money=None,
        )

    def refund(
        self,
        *,
        payment_id: str,
        gateway_reference: str,
        amount_minor: int,
        currency: str,
        refund_id: str | None = None,
    ) -> GatewayResult:
        """Without a refund id: REFUNDED once Adyen received the refund (the payment saga's RefundCapture); a refusal
        arrives later, by webhook (REFUND_FAILED, or REFUND with success "false"), and shows as a REFUND_FAILED
        notice. With one: REFUND_PENDING, the refund id as the refund's reference; ``lookup_refund`` tells the
        outcome once its webhook is stored."""
        check_money(amount_minor, currency)
        _require_reference(gateway_reference)
        request = self._modification_request(payment_id, amount_minor, currency)
        if refund_id is not None:
            request["reference"] = refund_id  # echoed as the REFUND webhook's merchantReference
        key = self._key(Operation.REFUND, payment_id, refund_id)
        answer = self._send(
            Operation.REFUND,
            payment_id,
            lambda: self._modifications_api.refund_captured_payment(request, gateway_reference, idempotency_key=key),
        )
        if refund_id is not None:
            result = self._modification(
                answer, operation=Operation.REFUND, status=GatewayStatus.REFUND_PENDING, payment_id=payment_id,
                key=key, gateway_reference=gateway_reference, money=(amount_minor, currency),
            )
            with self._received_lock:
                self._received_refunds[(payment_id, refund_id)] = (result.operation_reference, amount_minor, currency)
            return result
        return self._modification(
            answer, operation=Operation.REFUND, status=GatewayStatus.REFUNDED, payment_id=payment_id, key=key,
            gateway_reference=gateway_reference, money=(amount_minor, currency),
        )

    def lookup(self, *, payment_id: str, gateway_reference: str | None = None) -> PaymentSnapshot | None:
        """The payment as the stored webhook notices tell it (see the module docstring)."""
        idempotency_key(Operation.AUTHORIZE, payment_id)  # validates the id as every other call does
        notices = _about(self._notices(payment_id), payment_id, gateway_reference)
        authorisation = next(
            (n for n in reversed(notices) if n.kind in (NoticeKind.AUTHORISED, NoticeKind.AUTHORISATION_FAILED)), None
        )
        reference = gateway_reference or next((n.gateway_reference for n in notices if _names_the_payment(n)), None)
        if reference is None:
            return None
        deciding = [n for n in notices if n.kind in _STATUS_OF]
        status = _STATUS_OF[deciding[-1].kind] if deciding else GatewayStatus.AUTHORIZED
        amount_minor, currency, decline_reason = 0, "", None  # unknown until the AUTHORISATION webhook arrives
        if authorisation is not None:
            amount_minor, currency = authorisation.amount_minor or 0, authorisation.currency or ""
            if authorisation.kind is NoticeKind.AUTHORISATION_FAILED:
                decline_reason = decline_reason_of(None, authorisation.reason)  # the webhook carries the text only
        return PaymentSnapshot(
            payment_id=payment_id,
            gateway_reference=reference,
            status=status,
            amount_minor=amount_minor,
            currency=currency,
            captured_minor=_net(notices, NoticeKind.CAPTURED, NoticeKind.CAPTURE_FAILED),
            refunded_minor=_net(notices, NoticeKind.REFUNDED, NoticeKind.REFUND_FAILED),
            decline_reason=decline_reason,
        )

    def lookup_refund(
        self, *, payment_id: str, gateway_reference: str, refund_id: str, operation_reference: str | None = None
    ) -> RefundSnapshot | None:
        """The refund as its stored REFUND notice tells it, else as Adyen "received" it (see the module docstring)."""
        idempotency_key(Operation.REFUND, payment_id, refund_id)  # validates both ids as the refund does
        _require_reference(gateway_reference)
        with self._received_lock:
            received = self._received_refunds.get((payment_id, refund_id))
        psp_reference = operation_reference or (received[0] if received is not None else None)
        notices = _about(self._notices(payment_id), payment_id, gateway_reference)
        outcomes = [
            n for n in notices
            if n.kind in _REFUND_OUTCOMES and n.gateway_reference == gateway_reference
            and (n.operation_reference == psp_reference if psp_reference else n.payment_id == refund_id)
        ]
        if outcomes:
            latest = outcomes[-1]  # a REFUND_FAILED after a REFUND success: the scheme gave the money back after all
            if latest.operation_reference is None:
                raise GatewayOutcomeUnknown("lookup_refund: a REFUND notice without its pspReference",
                                            payment_id=payment_id)
            return RefundSnapshot(
                refund_id=refund_id,
                operation_reference=latest.operation_reference,
                status=_REFUND_OUTCOMES[latest.kind],
                amount_minor=latest.amount_minor or 0,
                currency=latest.currency or "",
                failure_reason=latest.reason if latest.kind is NoticeKind.REFUND_FAILED else None,
            )
        if psp_reference is None:
            return None
        amount_minor, currency = (received[1], received[2]) if received is not None else (0, "")
        return RefundSnapshot(refund_id=refund_id, operation_reference=psp_reference,
                              status=GatewayStatus.REFUND_PENDING, amount_minor=amount_minor, currency=currency)

    # --- webhooks ---------------------------------------------------------------------------------------------------

    def read_webhook(self, body: bytes, headers: Mapping[str, str]) -> list[GatewayNotice]:
        """The notices of one NotificationRequest, each item's HMAC verified; WebhookRejected if any fails."""
        del headers  # Adyen signs each item, not the request
        items = _notification_items(body)
        notices = []
        for item in items:
            self._verify(item)
            notices.append(_notice(item))
        return notices

    def _verify(self, item: JsonDict) -> None:
        what = f"item {item.get('eventCode')} {item.get('pspReference')}"
        if self._hmac_key is None:
            raise WebhookRejected(f"{what}: no HMAC key is configured, so no signature can be verified")
        additional = item.get("additionalData")
        signature = additional.get("hmacSignature") if isinstance(additional, dict) else None
        if not isinstance(signature, str) or not signature:
            raise WebhookRejected(f"{what}: no hmacSignature")
        try:
            valid = is_valid_hmac_notification(item, self._hmac_key)
        except (KeyError, TypeError, ValueError, binascii.Error) as bad:
            raise WebhookRejected(f"{what}: signature cannot be checked ({type(bad).__name__})") from bad
        if valid is not True:
            raise WebhookRejected(f"{what}: hmacSignature does not match (forged, or signed with another key)")

    # --- HTTP through the SDK ---------------------------------------------------------------------------------------

    @staticmethod
    def _key(operation: Operation, payment_id: str, refund_id: str | None = None) -> str:
        key = idempotency_key(operation, payment_id, refund_id)
        if len(key) > MAX_IDEMPOTENCY_KEY:
            raise ValueError(f"idempotency key {key!r} is longer than Adyen's {MAX_IDEMPOTENCY_KEY} characters")
        return key

    def _modification_request(self, payment_id: str, amount_minor: int | None, currency: str | None) -> JsonDict:
        # ``reference`` = payment_id: the modification's webhook then carries our payment id as merchantReference.
        request: JsonDict = {"merchantAccount": self._merchant_account, "reference": payment_id}
        if amount_minor is not None:
            request["amount"] = {"value": amount_minor, "currency": currency}
        return request

    @staticmethod
    def _send(operation: Operation, payment_id: str, call: Callable[[], Any]) -> JsonDict:
        """One SDK call; its answer's body, or the port's exception for what went wrong."""
        what = operation.value
        try:
            result = call()
        except AdyenAPIResponseError as error:
            raise _http_error(operation, payment_id, error) from error
        except requests.exceptions.RequestException as error:
            if _never_sent(error):
                raise GatewayUnreachable(
                    f"{what}: Adyen unreachable ({type(error).__name__})", operation=operation, payment_id=payment_id
                ) from error
            raise GatewayOutcomeUnknown(
                f"{what}: no answer from Adyen ({type(error).__name__})", operation=operation, payment_id=payment_id
            ) from error
        except AttributeError as error:  # the SDK reading an error body that is not a JSON object
            raise GatewayOutcomeUnknown(
                f"{what}: Adyen answered an unreadable body", operation=operation, payment_id=payment_id
            ) from error
        message = getattr(result, "message", None)
        if not isinstance(message, dict):
            raise GatewayOutcomeUnknown(f"{what}: Adyen's answer is not a JSON object", operation=operation,
                                        payment_id=payment_id)
        return message

    # --- answers ----------------------------------------------------------------------------------------------------

    def _authorization(
        self, answer: JsonDict, payment_id: str, key: str, amount_minor: int, currency: str
    ) -> GatewayResult:
        operation = Operation.AUTHORIZE
        try:
            result_code, psp_reference = _text(answer, "resultCode"), _text(answer, "pspReference")
            if answer.get("merchantReference", payment_id) != payment_id:
                raise ValueError("merchantReference is another payment's")
            if "amount" in answer and _amount(answer) != (amount_minor, currency):
                raise ValueError(f"amount {answer['amount']} is not the {amount_minor} {currency} asked")
        except (KeyError, TypeError, ValueError) as bad:
            raise _unexpected(operation, payment_id, bad) from bad
        result = GatewayResult(
            operation=operation,
            status=GatewayStatus.AUTHORIZED,
            payment_id=payment_id,
            idempotency_key=key,
            gateway_reference=psp_reference,
            operation_reference=psp_reference,
            amount_minor=amount_minor,
            currency=currency,
        )
        if result_code == "Authorised":
            return result
        if result_code in _DECLINED_RESULTS:
            code, reason = _optional_text(answer, "refusalReasonCode"), _optional_text(answer, "refusalReason")
            return _declined(result, result_code, code, reason)
        if result_code in _PENDING_RESULTS:
            raise GatewayOutcomeUnknown(
                f"authorize: Adyen answered {result_code}; the AUTHORISATION webhook will tell the outcome",
                operation=operation,
                payment_id=payment_id,
            )
        raise _unexpected(operation, payment_id, ValueError(f"resultCode {result_code!r}"))

    @staticmethod
    def _modification(
        answer: JsonDict,
        *,
        operation: Operation,
        status: GatewayStatus,
        payment_id: str,
        key: str,
        gateway_reference: str,
        money: tuple[int, str] | None,
    ) -> GatewayResult:
        """The result of a modification Adyen "received"; ``money`` is what was asked (None for a cancel)."""
        try:
            if answer.get("status") != "received":
                raise ValueError(f"status {answer.get('status')!r}, not 'received'")
            psp_reference = _text(answer, "pspReference")
            if gateway_reference and answer.get("paymentPspReference") != gateway_reference:
                raise ValueError("paymentPspReference is another payment's")
            if not gateway_reference and answer.get("paymentReference") != payment_id:
                raise ValueError("paymentReference is another payment's")
            if money is not None and _amount(answer) != money:
                raise ValueError(f"amount {answer.get('amount')} is not the {money[0]} {money[1]} asked")
        except (KeyError, TypeError, ValueError) as bad:
            raise _unexpected(operation, payment_id, bad) from bad
        amount_minor, currency = money if money is not None else (0, "")  # a cancel names no amount
        return GatewayResult(
            operation=operation,
            status=status,
            payment_id=payment_id,
            idempotency_key=key,
            gateway_reference=gateway_reference,
            operation_reference=psp_reference,
            amount_minor=amount_minor,
            currency=currency,
        )


# --- helpers --------------------------------------------------------------------------------------------------------


def _platform_of(checkout_url: str) -> tuple[str, str | None]:
    """The SDK's platform for a URL. On "test" the SDK rewrites "-live" to "-test" in every URL, and on "live" it
    needs a prefix for URLs it builds itself; ours are given whole, so only the platform must match the URL."""
    host = checkout_url.split("://", 1)[-1].split("/", 1)[0]
    if "-checkout-live" in host:
        return "live", host.split("-checkout-live", 1)[0]
    return "test", None


def _versioned(checkout_url: str) -> str:
    base = checkout_url.rstrip("/")
    return base if base.endswith(f"/{API_VERSION}") else f"{base}/{API_VERSION}"


def _require_reference(gateway_reference: str) -> None:
    if not gateway_reference:
        raise ValueError("Adyen modifies a payment by its pspReference: gateway_reference is required")


def _never_sent(error: Exception) -> bool:
    """True when the request certainly never reached Adyen: no connection was made (refused, connect timeout, TLS)."""
    if isinstance(error, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
        return True
    if not isinstance(error, requests.exceptions.ConnectionError) or not error.args:
        return False
    cause = getattr(error.args[0], "reason", error.args[0])  # urllib3's MaxRetryError wraps the cause
    # NewConnectionError (refused, unresolvable) is a ConnectTimeoutError in urllib3; a dropped answer is not.
    return isinstance(cause, ConnectTimeoutError)


def _http_error(operation: Operation, payment_id: str, error: AdyenAPIResponseError) -> Exception:
    status_code = error.status_code if isinstance(error.status_code, int) else 0
    body = error.message if isinstance(error.message, dict) else {}
    code = str(body.get("errorCode") or error.error_code or status_code)
    what = f"{operation.value}: Adyen answered {status_code}"
    if status_code in (429, 503):
        return GatewayUnreachable(f"{what}, nothing processed", operation=operation, payment_id=payment_id)
    if 400 <= status_code < 500:
        message = str(body.get("message", ""))[:300]
        return GatewayRejected(
            f"{what} ({code}): {message}", status_code=status_code, code=code, operation=operation,
            payment_id=payment_id,
        )
    return GatewayOutcomeUnknown(what, operation=operation, payment_id=payment_id)


def _unexpected(operation: Operation, payment_id: str, bad: Exception) -> GatewayOutcomeUnknown:
    return GatewayOutcomeUnknown(
        f"{operation.value}: Adyen's answer is not the contract: {bad}", operation=operation, payment_id=payment_id
    )


def _declined(result: GatewayResult, result_code: str, code: str | None, reason: str | None) -> GatewayResult:
    decline = decline_reason_of(code, reason) if result_code == "Refused" else DeclineReason.CARD_DECLINED
    return GatewayResult(
        operation=result.operation,
        status=GatewayStatus.DECLINED,
        payment_id=result.payment_id,
        idempotency_key=result.idempotency_key,
        gateway_reference=result.gateway_reference,
        operation_reference=result.operation_reference,
        amount_minor=result.amount_minor,
        currency=result.currency,
        decline_reason=decline,
        decline_detail=reason or result_code,
    )


def _text(body: Mapping[str, Any], name: str) -> str:
    value = body[name]
    if not isinstance(value, str) or not value:
        raise TypeError(f"{name} is not a non-empty string")
    return value


def _optional_text(body: Mapping[str, Any], name: str) -> str | None:
    value = body.get(name)
    return value if isinstance(value, str) and value else None


def _amount(body: Mapping[str, Any]) -> tuple[int, str]:
    amount = body["amount"]
    if not isinstance(amount, dict):
        raise TypeError("amount is not an object")
    value = amount["value"]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("amount.value is not an integer")
    return value, _text(amount, "currency")


def _about(notices: Sequence[GatewayNotice], payment_id: str, gateway_reference: str | None) -> list[GatewayNotice]:
    """This payment's notices, once each, in event time order (arrival order among equals). A notice about another
    authorization under the same payment id (another pspReference) is not this payment's. A modification made under
    its own reference (a refund's refund id, echoed as merchantReference) is, by its originalReference."""
    reference = gateway_reference or next(
        (n.gateway_reference for n in notices if n.payment_id == payment_id and _names_the_payment(n)), None
    )
    seen: set[str] = set()
    mine = []
    for notice in notices:
        if notice.event_id in seen:
            continue
        if notice.payment_id is not None and notice.payment_id != payment_id and not (
            reference is not None and _is_modification(notice) and notice.gateway_reference == reference
        ):
            continue
        if gateway_reference and notice.gateway_reference and notice.gateway_reference != gateway_reference:
            continue
        seen.add(notice.event_id)
        mine.append(notice)
    return sorted(mine, key=lambda notice: notice.occurred_at_ms)


def _is_modification(notice: GatewayNotice) -> bool:
    """A notice about a modification of a payment: it names the payment by originalReference."""
    return notice.gateway_reference is not None and notice.gateway_reference != notice.operation_reference


def _names_the_payment(notice: GatewayNotice) -> bool:
    """An AUTHORISATION (its pspReference is the payment's) or a modification naming the payment (its
    originalReference); not, say, a failed cancel by reference that found no payment."""
    if notice.kind in (NoticeKind.AUTHORISED, NoticeKind.AUTHORISATION_FAILED):
        return True
    return notice.gateway_reference is not None and notice.gateway_reference != notice.operation_reference


def _net(notices: Sequence[GatewayNotice], done: NoticeKind, undone: NoticeKind) -> int:
    """The amount the ``done`` notices moved, less those whose modification an ``undone`` notice reverses."""
    reversed_operations = {n.operation_reference for n in notices if n.kind is undone}
    return sum(
        n.amount_minor or 0 for n in notices if n.kind is done and n.operation_reference not in reversed_operations
    )


def _notification_items(body: bytes) -> list[JsonDict]:
    try:
        request = json.loads(body)
    except (ValueError, UnicodeDecodeError) as bad:
        raise WebhookRejected("the body is not JSON") from bad
    wrappers = request.get("notificationItems") if isinstance(request, dict) else None
    if not isinstance(wrappers, list) or not wrappers:
        raise WebhookRejected("the body is not an Adyen NotificationRequest (no notificationItems)")
    items = [wrapper.get("NotificationRequestItem") if isinstance(wrapper, dict) else None for wrapper in wrappers]
    if not all(isinstance(item, dict) for item in items):
        raise WebhookRejected("a notificationItems entry holds no NotificationRequestItem")
    return [item for item in items if isinstance(item, dict)]


def _kind_of(event_code: str, success: bool) -> NoticeKind:
    if event_code in _KIND_OF_EVENT:
        return _KIND_OF_EVENT[event_code]
    if event_code in _KIND_OF_SUCCESS:
        when_true, when_false = _KIND_OF_SUCCESS[event_code]
        return when_true if success else when_false
    return NoticeKind.OTHER


def _occurred_at_ms(event_date: str) -> int:
    moment = datetime.fromisoformat(event_date)
    if moment.tzinfo is None:  # Adyen always gives an offset; a bare time is taken as UTC
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)  # integer arithmetic: no float rounding


def _notice(item: JsonDict) -> GatewayNotice:
    """One verified item in the saga's words; WebhookRejected when a field Adyen always sends is missing or bad."""
    try:
        event_code, psp_reference = _text(item, "eventCode"), _text(item, "pspReference")
        success = item["success"]
        if success not in ("true", "false"):
            raise ValueError(f"success {success!r}")
        amount_minor, currency = _amount(item)
        occurred_at_ms = _occurred_at_ms(_text(item, "eventDate"))
    except (KeyError, TypeError, ValueError) as bad:
        raise WebhookRejected(f"item {item.get('eventCode')} {item.get('pspReference')}: {bad}") from bad
    original = _optional_text(item, "originalReference")
    return GatewayNotice(
        gateway=AdyenGateway.name,
        event_id=f"{event_code}:{psp_reference}:{success}",
        kind=_kind_of(event_code, success == "true"),
        occurred_at_ms=occurred_at_ms,
        payment_id=_optional_text(item, "merchantReference"),
        gateway_reference=original or psp_reference,
        operation_reference=psp_reference,
        amount_minor=amount_minor,
        currency=currency,
        reason=_optional_text(item, "reason"),
        payload=item,
    )
