"""The Gateway port and WebhookSource over Stripe's PaymentIntents API, with the official SDK (``stripe.StripeClient``).

| port      | Stripe call                                                                          | answer            |
|-----------|--------------------------------------------------------------------------------------|-------------------|
| authorize | ``POST /v1/payment_intents`` confirm=true, capture_method=manual, payment_method=the | requires_capture: |
|           | card token, amount, currency (lower case), metadata[payment_id]                      | AUTHORIZED; a 402 |
|           |                                                                                      | card error:       |
|           |                                                                                      | DECLINED          |
| capture   | ``POST /v1/payment_intents/{id}/capture`` amount_to_capture                          | CAPTURED (final)  |
| cancel    | ``POST /v1/payment_intents/{id}/cancel``                                             | VOIDED            |
| refund    | ``POST /v1/refunds`` payment_intent, amount, metadata[payment_id]                    | REFUNDED          |
|           |                                                                                      | (the refund's id) |
| refund    | the same, plus metadata[refund_id]                                                   | succeeded:        |
| (with id) |                                                                                      | REFUNDED; pending |
|           |                                                                                      | / requires_action:|
|           |                                                                                      | REFUND_PENDING;   |
|           |                                                                                      | failed, canceled: |
|           |                                                                                      | REFUND_FAILED     |
| lookup_   | ``GET /v1/refunds/{id}`` given the refund's id, else ``GET /v1/refunds``             | RefundSnapshot,   |
| refund    | payment_intent (every page) and the one whose metadata.refund_id is the refund id    | or None           |
| lookup    | ``GET /v1/payment_intents/{id}`` (given the reference: strongly consistent), else    | PaymentSnapshot,  |
|           | ``GET /v1/payment_intents/search`` ``metadata['payment_id']:'<id>'``                 | or None           |

Every POST carries ``Idempotency-Key: idempotency_key(operation, payment_id)`` (steps/gateway/port.py). Stripe's search
is eventually consistent (Stripe: usually under a minute): a lookup by payment id may answer None for a PaymentIntent
created moments ago. None still means "resending the authorization with the same key is safe": Stripe replays it.

Declines: ``decline_code``, else ``code``, names the DeclineReason (card_declined, insufficient_funds, fraudulent,
expired_card); any other code is CARD_DECLINED with the raw code in ``decline_detail``. A PaymentIntent left needing
a customer action (``requires_action``: 3-D Secure) is DECLINED too: a server cannot authenticate the cardholder.

Every network wait is bounded (``connect_timeout_ms`` to connect, ``timeout_ms`` for each read and write); the SDK
never retries (``max_network_retries=0``): the workflow's Retry decides, with the same key. Failures:

| what happened                                                          | raised                  |
|------------------------------------------------------------------------|-------------------------|
| connect error / connect timeout / pool timeout (nothing was sent)      | GatewayUnreachable      |
| 429, or code ``lock_timeout`` / ``rate_limit`` (refused before acting) | GatewayUnreachable      |
| read or write timeout, connection dropped mid-answer                   | GatewayOutcomeUnknown   |
| any 5xx (Stripe: indeterminate, replayed under the key), any error     | GatewayOutcomeUnknown   |
| with ``Stripe-Should-Retry: true``                                     |                         |
| 409 ``idempotency_key_in_use``: another request with this key is in    | GatewayOutcomeUnknown   |
| flight, so the operation may be taking effect                          |                         |
| a body that is not the contract, or an answer for another request      | GatewayOutcomeUnknown   |
| (metadata.payment_id, PaymentIntent id, amount or currency differ)     |                         |
| other 4xx: ``invalid_request_error`` (its code), ``idempotency_error`` | GatewayRejected         |
| (same key, other parameters), authentication                           |                         |

Webhooks (``read_webhook``): ``Stripe-Signature`` checked by the SDK (``stripe.WebhookSignature.verify_header``,
tolerance 300 s) against ``webhook_secret``; one GatewayNotice per event:

| event                                           | notice                                                    |
|-------------------------------------------------|-----------------------------------------------------------|
| ``payment_intent.amount_capturable_updated``    | AUTHORISED, amount_capturable                             |
| ``payment_intent.payment_failed``               | AUTHORISATION_FAILED, amount, reason = decline_code/code  |
| ``payment_intent.succeeded``                    | CAPTURED, amount_received                                 |
| ``payment_intent.canceled``                     | CANCELLED, amount, reason = cancellation_reason           |
| ``charge.refunded``                             | REFUNDED, amount_refunded (all refunds of the charge so   |
|                                                 | far), the latest refund's id (where ``charge.refunds`` is |
|                                                 | included: not on API versions since 2022-11-15)           |
| ``refund.failed``; ``charge.refund.updated`` /  | REFUND_FAILED, amount, the refund's id, failure_reason    |
| ``refund.updated`` with status failed           |                                                           |
| ``charge.dispute.created``                      | DISPUTE_OPENED, amount, the dispute's id, reason          |
| ``charge.dispute.closed``                       | DISPUTE_WON / DISPUTE_LOST by status (else OTHER)         |
| anything else                                   | OTHER                                                     |

``gateway_reference`` is the PaymentIntent (the object's id, or its ``payment_intent``), ``payment_id`` the object's
``metadata.payment_id`` where it has one (a refund made with a refund id carries both ``metadata.payment_id`` and
``metadata.refund_id``: its events match one refund by the refund's id, ``operation_reference``). The API key and
the webhook secret are never logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import stripe

from steps.gateway.notices import GatewayNotice, NoticeKind, WebhookRejected
from steps.gateway.port import (
    DeclineReason,
    GatewayError,
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

_log = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT_MS = 500
WEBHOOK_TOLERANCE_S = 300
MAX_KEY_LENGTH = 255  # Stripe refuses longer idempotency keys
JsonDict = dict[str, Any]

_UNREACHABLE_CODES = frozenset({"lock_timeout", "rate_limit"})
_DECLINE_REASONS = {reason.value: reason for reason in DeclineReason}
# A PaymentIntent in one of these holds no authorization: declined, or waiting for a customer we cannot reach.
_NOT_AUTHORIZED = frozenset({"requires_payment_method", "requires_action", "requires_confirmation"})
_REFUND_ACCEPTED = frozenset({"succeeded", "pending", "requires_action"})  # a later failure comes as refund.failed
# A refund's status (with a refund id) in the port's words.
_REFUND_STATUS = {
    "succeeded": GatewayStatus.REFUNDED,
    "pending": GatewayStatus.REFUND_PENDING,
    "requires_action": GatewayStatus.REFUND_PENDING,
    "failed": GatewayStatus.REFUND_FAILED,
    "canceled": GatewayStatus.REFUND_FAILED,
}
REFUND_PAGE = 100  # refunds listed per page (Stripe's maximum)


@dataclass(frozen=True)
class _Call:
    operation: Operation
    payment_id: str
    key: str


@dataclass(frozen=True)
class _Reply:
    """Stripe's answer: HTTP status, the raw JSON body, and whether it was replayed under the idempotency key."""

    http_status: int
    body: JsonDict
    replayed: bool


class StripeGateway:
    name = "stripe"
    # Retrieve by id is exact; search by metadata is too locally, but real Stripe indexes it within about a minute.
    lookup_is_complete = True

    def __init__(
        self,
        *,
        api_key: str,
        api_base: str | None = None,
        timeout_ms: int,
        connect_timeout_ms: int = DEFAULT_CONNECT_TIMEOUT_MS,
        webhook_secret: str | None = None,
    ) -> None:
        if not api_key:
            raise ValueError("api_key is required")
        if timeout_ms <= 0 or connect_timeout_ms <= 0:
            raise ValueError("timeouts must be positive")
        connect_s = connect_timeout_ms / 1000
        timeout = httpx.Timeout(timeout_ms / 1000, connect=connect_s, pool=connect_s)
        self._http = stripe.HTTPXClient(timeout=timeout, allow_sync_methods=True)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base.rstrip("/")} if api_base else None,
            max_network_retries=0,
            http_client=self._http,
        )
        self._webhook_secret = webhook_secret

    def close(self) -> None:
        self._http.close()  # type: ignore[no-untyped-call]  # the SDK leaves close() unannotated

    def __enter__(self) -> StripeGateway:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- the port ---------------------------------------------------------------------------------------------------

    def authorize(self, *, payment_id: str, amount_minor: int, currency: str, card_token: str) -> GatewayResult:
        check_money(amount_minor, currency)
        key = _key(Operation.AUTHORIZE, payment_id)
        reply = self._call(
            Operation.AUTHORIZE,
            payment_id,
            key,
            lambda options: self._client.v1.payment_intents.create(
                params={
                    "amount": amount_minor,
                    "currency": currency.lower(),
                    "confirm": True,
                    "capture_method": "manual",
                    "payment_method": card_token,
                    "metadata": {"payment_id": payment_id},
                },
                options=options,
            ),
        )
        call = _Call(Operation.AUTHORIZE, payment_id, key)
        with _contract(Operation.AUTHORIZE, payment_id):
            if reply.http_status == 402:
                return self._declined(call, reply, amount_minor, currency)
            intent = _intent_of(reply.body, payment_id, amount_minor=amount_minor, currency=currency)
            status = _str(intent, "status")
            if status == "requires_capture":
                return _result(
                    call, GatewayStatus.AUTHORIZED, intent, reply, amount_minor=amount_minor, currency=currency
                )
            if status in _NOT_AUTHORIZED:
                reason, detail = _reason(intent.get("last_payment_error"), default=status)
                return _result(
                    call,
                    GatewayStatus.DECLINED,
                    intent,
                    reply,
                    amount_minor=amount_minor,
                    currency=currency,
                    reason=reason,
                    detail=detail,
                )
            raise GatewayOutcomeUnknown(
                f"authorize: unexpected PaymentIntent status {status!r}",
                operation=Operation.AUTHORIZE,
                payment_id=payment_id,
            )

    def capture(self, *, payment_id: str, gateway_reference: str, amount_minor: int, currency: str) -> GatewayResult:
        check_money(amount_minor, currency)
        key = _key(Operation.CAPTURE, payment_id)
        reply = self._call(
            Operation.CAPTURE,
            payment_id,
            key,
            lambda options: self._client.v1.payment_intents.capture(
                gateway_reference, params={"amount_to_capture": amount_minor}, options=options
            ),
        )
        with _contract(Operation.CAPTURE, payment_id):
            intent = _intent_of(reply.body, payment_id, currency=currency, reference=gateway_reference)
            status = _str(intent, "status")
            if status != "succeeded" or _int(intent, "amount_received") != amount_minor:
                raise ValueError(f"capture answered status {status!r}, amount_received {intent.get('amount_received')}")
            return _result(
                _Call(Operation.CAPTURE, payment_id, key),
                GatewayStatus.CAPTURED,
                intent,
                reply,
                amount_minor=amount_minor,
                currency=currency,
            )

    def cancel(self, *, payment_id: str, gateway_reference: str) -> GatewayResult:
        key = _key(Operation.VOID, payment_id)
        reply = self._call(
            Operation.VOID,
            payment_id,
            key,
            lambda options: self._client.v1.payment_intents.cancel(gateway_reference, options=options),
        )
        with _contract(Operation.VOID, payment_id):
            intent = _intent_of(reply.body, payment_id, reference=gateway_reference)
            if _str(intent, "status") != "canceled":
                raise ValueError(f"cancel answered status {intent.get('status')!r}")
            return _result(
                _Call(Operation.VOID, payment_id, key),
                GatewayStatus.VOIDED,
                intent,
                reply,
                amount_minor=_int(intent, "amount"),
                currency=_str(intent, "currency").upper(),
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
        check_money(amount_minor, currency)
        key = _key(Operation.REFUND, payment_id, refund_id)
        metadata = {"payment_id": payment_id} | ({} if refund_id is None else {"refund_id": refund_id})
        reply = self._call(
            Operation.REFUND,
            payment_id,
            key,
            lambda options: self._client.v1.refunds.create(
                params={"payment_intent": gateway_reference, "amount": amount_minor, "metadata": metadata},
                options=options,
            ),
        )
        with _contract(Operation.REFUND, payment_id):
            refund = reply.body
            if (
                refund.get("object") != "refund"
                or _payment_intent_id(refund) != gateway_reference
                or _metadata_payment_id(refund) != payment_id
                or _metadata(refund, "refund_id") != refund_id
                or _int(refund, "amount") != amount_minor
                or _str(refund, "currency").upper() != currency.upper()
            ):
                raise ValueError(
                    "the refund is not the one asked for (payment_intent, payment_id, refund_id, amount, currency)"
                )
            status = _str(refund, "status")
            if refund_id is not None:
                if status not in _REFUND_STATUS:
                    raise ValueError(f"refund status {status!r}")
                refund_status = _REFUND_STATUS[status]
                return GatewayResult(
                    operation=Operation.REFUND,
                    status=refund_status,
                    payment_id=payment_id,
                    idempotency_key=key,
                    gateway_reference=gateway_reference,
                    operation_reference=_str(refund, "id"),
                    amount_minor=amount_minor,
                    currency=currency,
                    decline_detail=_failure_reason(refund) if refund_status is GatewayStatus.REFUND_FAILED else None,
                    replayed=reply.replayed,
                )
        if status not in _REFUND_ACCEPTED:
            raise GatewayRejected(
                f"refund: Stripe answered a {status} refund",
                status_code=reply.http_status,
                code=f"refund_{status}",
                operation=Operation.REFUND,
                payment_id=payment_id,
            )
        return GatewayResult(
            operation=Operation.REFUND,
            status=GatewayStatus.REFUNDED,
            payment_id=payment_id,
            idempotency_key=key,
            gateway_reference=gateway_reference,
            operation_reference=_str(refund, "id"),
            amount_minor=amount_minor,
            currency=currency,
            replayed=reply.replayed,
        )

    def lookup(self, *, payment_id: str, gateway_reference: str | None = None) -> PaymentSnapshot | None:
        _key(Operation.AUTHORIZE, payment_id)  # validates the id as every other call does
        intent = self._find(payment_id, gateway_reference)
        if intent is None:
            return None
        with _contract(None, payment_id):
            return _snapshot(payment_id, intent)

    def lookup_refund(
        self, *, payment_id: str, gateway_reference: str, refund_id: str, operation_reference: str | None = None
    ) -> RefundSnapshot | None:
        _key(Operation.REFUND, payment_id, refund_id)  # validates both ids as the refund does
        if not gateway_reference:
            raise ValueError("Stripe lists a PaymentIntent's refunds by its id: gateway_reference is required")
        refund = (
            self._retrieve_refund(payment_id, operation_reference)
            if operation_reference
            else self._find_refund(payment_id, gateway_reference, refund_id)
        )
        if refund is None:
            return None
        with _contract(None, payment_id):
            if (
                refund.get("object") != "refund"
                or _payment_intent_id(refund) != gateway_reference
                or _metadata_payment_id(refund) != payment_id
                or _metadata(refund, "refund_id") != refund_id
            ):
                raise ValueError(f"{refund.get('id')} is not refund {refund_id} of {gateway_reference}")
            status = _REFUND_STATUS[_str(refund, "status")]
            return RefundSnapshot(
                refund_id=refund_id,
                operation_reference=_str(refund, "id"),
                status=status,
                amount_minor=_int(refund, "amount"),
                currency=_str(refund, "currency").upper(),
                failure_reason=_failure_reason(refund) if status is GatewayStatus.REFUND_FAILED else None,
            )

    def _retrieve_refund(self, payment_id: str, refund_reference: str) -> JsonDict | None:
        """The refund by its id (strongly consistent)."""
        try:
            reply = self._call(
                None, payment_id, None, lambda options: self._client.v1.refunds.retrieve(refund_reference,
                                                                                         options=options)
            )
        except GatewayRejected as missing:
            if missing.status_code == 404 and missing.code == "resource_missing":
                return None
            raise
        return reply.body

    def _find_refund(self, payment_id: str, gateway_reference: str, refund_id: str) -> JsonDict | None:
        """The PaymentIntent's refund carrying ``metadata.refund_id``, through every page of its refunds."""
        starting_after: str | None = None
        while True:
            try:
                reply = self._call(None, payment_id, None, self._refund_page(gateway_reference, starting_after))
            except GatewayRejected as missing:
                if missing.status_code == 404 and missing.code == "resource_missing":
                    return None  # no such PaymentIntent: no refund of it either
                raise
            with _contract(None, payment_id):
                page = reply.body.get("data")
                if reply.body.get("object") != "list" or not isinstance(page, list):
                    raise ValueError("refunds.list did not answer a list")
                refunds = [r for r in page if isinstance(r, dict)]
                mine = [r for r in refunds if _metadata(r, "refund_id") == refund_id]
                if mine:
                    return max(mine, key=_created)
                if reply.body.get("has_more") is not True or not refunds:
                    return None
                starting_after = _str(refunds[-1], "id")

    def _refund_page(
        self, gateway_reference: str, starting_after: str | None
    ) -> Callable[[stripe.RequestOptions], stripe.StripeObject]:
        """One page of the PaymentIntent's refunds (newest first), after ``starting_after``."""
        if starting_after is None:
            return lambda options: self._client.v1.refunds.list(
                params={"payment_intent": gateway_reference, "limit": REFUND_PAGE}, options=options
            )
        return lambda options: self._client.v1.refunds.list(
            params={"payment_intent": gateway_reference, "limit": REFUND_PAGE, "starting_after": starting_after},
            options=options,
        )

    def _find(self, payment_id: str, gateway_reference: str | None) -> JsonDict | None:
        """The PaymentIntent: retrieved by its id when the saga kept it, else searched by metadata.payment_id."""
        if gateway_reference:
            try:
                reply = self._call(
                    None,
                    payment_id,
                    None,
                    lambda options: self._client.v1.payment_intents.retrieve(
                        gateway_reference, params={"expand": ["latest_charge"]}, options=options
                    ),
                )
            except GatewayRejected as missing:
                if missing.status_code == 404 and missing.code == "resource_missing":
                    return None
                raise
            with _contract(None, payment_id):
                return _intent_of(reply.body, payment_id, reference=gateway_reference)
        escaped = payment_id.replace("\\", "\\\\").replace("'", "\\'")
        reply = self._call(
            None,
            payment_id,
            None,
            lambda options: self._client.v1.payment_intents.search(
                params={"query": f"metadata['payment_id']:'{escaped}'", "expand": ["data.latest_charge"]},
                options=options,
            ),
        )
        with _contract(None, payment_id):
            found = reply.body.get("data")
            if reply.body.get("object") != "search_result" or not isinstance(found, list):
                raise ValueError("search did not answer a search_result")
            mine = [item for item in found if isinstance(item, dict) and _metadata_payment_id(item) == payment_id]
        if len(mine) > 1:
            # Authorized under two keys: what property 11 forbids. Say it, and read the newest.
            _log.warning(
                "several PaymentIntents carry one payment id", extra={"payment_id": payment_id, "count": len(mine)}
            )
        return max(mine, key=_created, default=None)

    @staticmethod
    def _declined(call: _Call, reply: _Reply, amount_minor: int, currency: str) -> GatewayResult:
        """A 402 card error: the decline, on the PaymentIntent Stripe created for it."""
        error = reply.body.get("error")
        if not isinstance(error, dict) or not isinstance(error.get("payment_intent"), dict):
            raise ValueError("a card error without its PaymentIntent")
        intent = _intent_of(error["payment_intent"], call.payment_id, amount_minor=amount_minor, currency=currency)
        reason, detail = _reason(error, default="card_declined")
        return _result(
            call,
            GatewayStatus.DECLINED,
            intent,
            reply,
            amount_minor=amount_minor,
            currency=currency,
            reason=reason,
            detail=detail,
        )

    # --- HTTP, through the SDK --------------------------------------------------------------------------------------

    def _call(
        self,
        operation: Operation | None,
        payment_id: str,
        key: str | None,
        send: Callable[[stripe.RequestOptions], stripe.StripeObject],
    ) -> _Reply:
        """One request; Stripe's failures turned into the port's (a 402 card error on authorize is an answer)."""
        options: stripe.RequestOptions = {"idempotency_key": key} if key is not None else {}
        try:
            answer = send(options)
        except stripe.CardError as card:
            if operation is not Operation.AUTHORIZE or not isinstance(card.json_body, dict):
                raise _failure(card, operation, payment_id) from card
            return _Reply(402, dict(card.json_body), _replayed(card.headers))
        except stripe.APIConnectionError as lost:
            raise _connection_failure(lost, operation, payment_id) from lost
        except stripe.StripeError as refused:
            raise _failure(refused, operation, payment_id) from refused
        response = answer.last_response
        if response is None or not isinstance(response.data, dict):
            raise GatewayOutcomeUnknown(
                f"{_what(operation)}: Stripe answered no JSON object", operation=operation, payment_id=payment_id
            )
        return _Reply(response.code, dict(response.data), _replayed(response.headers))

    # --- webhooks ---------------------------------------------------------------------------------------------------

    def read_webhook(self, body: bytes, headers: Mapping[str, str]) -> list[GatewayNotice]:
        """Verify ``Stripe-Signature`` and return the event's notice; WebhookRejected says why not."""
        if not self._webhook_secret:
            raise WebhookRejected("no Stripe webhook secret is configured (STRIPE_WEBHOOK_SECRET): cannot verify")
        signature = headers.get("stripe-signature")
        if not signature:
            raise WebhookRejected("missing Stripe-Signature header")
        try:
            stripe.WebhookSignature.verify_header(body, signature, self._webhook_secret, WEBHOOK_TOLERANCE_S)
        except stripe.SignatureVerificationError as refused:
            # The SDK says which: no signature matches (forged, or another secret), or the timestamp is too old.
            raise WebhookRejected(f"Stripe-Signature refused: {refused.user_message}") from None
        except UnicodeDecodeError:
            raise WebhookRejected("the body is not UTF-8") from None
        try:
            event = json.loads(body)
        except ValueError:
            raise WebhookRejected("the body is not JSON") from None
        return [_notice(event)]


# --- answers -----------------------------------------------------------------------------------------------------


@contextmanager
def _contract(operation: Operation | None, payment_id: str) -> Iterator[None]:
    """Turns a body that is not Stripe's contract (missing or mistyped fields, another request's answer) into
    GatewayOutcomeUnknown: the request may have taken effect, so a lookup decides."""
    try:
        yield
    except GatewayError:
        raise
    except (KeyError, ValueError, TypeError) as bad:
        raise GatewayOutcomeUnknown(
            f"{_what(operation)}: Stripe answered an unexpected body: {bad}", operation=operation, payment_id=payment_id
        ) from bad


def _key(operation: Operation, payment_id: str, refund_id: str | None = None) -> str:
    key = idempotency_key(operation, payment_id, refund_id)
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"idempotency key of {len(key)} characters; Stripe takes at most {MAX_KEY_LENGTH}")
    return key


def _what(operation: Operation | None) -> str:
    return operation.value if operation is not None else "lookup"


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    """A header, case-insensitively (the SDK hands over whatever mapping its HTTP client had)."""
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value
    return None


def _replayed(headers: Mapping[str, str] | None) -> bool:
    return _header(headers, "idempotent-replayed") == "true"


def _connection_failure(lost: stripe.APIConnectionError, operation: Operation | None, payment_id: str) -> GatewayError:
    cause = lost.__cause__
    if isinstance(cause, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        # Nothing left this process: Stripe cannot have acted.
        return GatewayUnreachable(
            f"{_what(operation)}: Stripe unreachable ({type(cause).__name__})",
            operation=operation,
            payment_id=payment_id,
        )
    # Read/write timeout, connection dropped: the request may have arrived and been processed.
    return GatewayOutcomeUnknown(
        f"{_what(operation)}: no answer from Stripe ({type(cause).__name__})",
        operation=operation,
        payment_id=payment_id,
    )


def _failure(refused: stripe.StripeError, operation: Operation | None, payment_id: str) -> GatewayError:
    status_code = refused.http_status
    body = refused.json_body if isinstance(refused.json_body, dict) else {}
    error = body.get("error")
    if not isinstance(error, dict):
        error = {}
    code = str(error.get("code") or refused.code or error.get("type") or "unknown")
    message = str(error.get("message") or refused.user_message or "")[:300]
    what = _what(operation)
    if status_code == 429 or code in _UNREACHABLE_CODES:
        return GatewayUnreachable(
            f"{what}: Stripe refused before acting ({status_code} {code})", operation=operation, payment_id=payment_id
        )
    if (
        status_code is None
        or status_code < 400
        or status_code >= 500
        or code == "idempotency_key_in_use"
        or _header(refused.headers, "stripe-should-retry") == "true"
    ):
        return GatewayOutcomeUnknown(
            f"{what}: Stripe answered {status_code} {code}: {message}", operation=operation, payment_id=payment_id
        )
    return GatewayRejected(
        f"{what}: Stripe rejected the request ({status_code} {code}): {message}",
        status_code=status_code,
        code=code,
        operation=operation,
        payment_id=payment_id,
    )


def _result(
    call: _Call,
    status: GatewayStatus,
    intent: JsonDict,
    reply: _Reply,
    *,
    amount_minor: int,
    currency: str,
    reason: DeclineReason | None = None,
    detail: str | None = None,
) -> GatewayResult:
    reference = _str(intent, "id")
    return GatewayResult(
        operation=call.operation,
        status=status,
        payment_id=call.payment_id,
        idempotency_key=call.key,
        gateway_reference=reference,
        operation_reference=reference,  # Stripe acts on the PaymentIntent itself
        amount_minor=amount_minor,
        currency=currency,
        decline_reason=reason,
        decline_detail=detail,
        replayed=reply.replayed,
    )


def _intent_of(
    body: Any,
    payment_id: str,
    *,
    amount_minor: int | None = None,
    currency: str | None = None,
    reference: str | None = None,
) -> JsonDict:
    """``body`` as the PaymentIntent of this request, or ValueError (another request's answer, or no intent)."""
    if not isinstance(body, dict) or body.get("object") != "payment_intent":
        raise ValueError("the answer is not a PaymentIntent")
    _str(body, "id")
    if _metadata_payment_id(body) != payment_id:
        raise ValueError("the PaymentIntent belongs to another payment (metadata.payment_id)")
    if reference is not None and body["id"] != reference:
        raise ValueError(f"the PaymentIntent is not {reference}")
    if amount_minor is not None and _int(body, "amount") != amount_minor:
        raise ValueError(f"the PaymentIntent's amount is not {amount_minor}")
    if currency is not None and _str(body, "currency").upper() != currency.upper():
        raise ValueError(f"the PaymentIntent's currency is not {currency}")
    return body


def _reason(error: object, *, default: str) -> tuple[DeclineReason, str]:
    """The DeclineReason of a card error (``decline_code``, else ``code``) and the raw code kept as detail."""
    decline_code = error.get("decline_code") if isinstance(error, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    for raw in (decline_code, code):
        if isinstance(raw, str) and raw in _DECLINE_REASONS:
            return _DECLINE_REASONS[raw], str(decline_code or code)
    detail = next((raw for raw in (decline_code, code) if isinstance(raw, str) and raw), default)
    return DeclineReason.CARD_DECLINED, detail


def _snapshot(payment_id: str, intent: JsonDict) -> PaymentSnapshot:
    status = _str(intent, "status")
    charge = intent.get("latest_charge")
    captured = _int(intent, "amount_received") if status == "succeeded" else 0
    refunded = _refunded(charge, captured) if isinstance(charge, dict) and captured else 0
    reason: DeclineReason | None = None
    if status == "requires_capture":
        gateway_status = GatewayStatus.AUTHORIZED
    elif status == "succeeded":
        gateway_status = GatewayStatus.REFUNDED if refunded >= captured > 0 else GatewayStatus.CAPTURED
    elif status == "canceled":
        gateway_status = GatewayStatus.VOIDED
    elif status in _NOT_AUTHORIZED:
        gateway_status = GatewayStatus.DECLINED
        reason = _reason(intent.get("last_payment_error"), default=status)[0]
    else:  # processing: Stripe has not decided yet
        raise GatewayOutcomeUnknown(f"lookup: the PaymentIntent is {status}", payment_id=payment_id)
    return PaymentSnapshot(
        payment_id=payment_id,
        gateway_reference=_str(intent, "id"),
        status=gateway_status,
        amount_minor=_int(intent, "amount"),
        currency=_str(intent, "currency").upper(),
        captured_minor=captured,
        refunded_minor=refunded,
        decline_reason=reason,
    )


def _refunded(charge: JsonDict, captured: int) -> int:
    """What was given back of ``captured``. Stripe's ``amount_refunded`` also counts what a partial capture released
    (``amount - amount_captured``), which was never taken from the customer."""
    released = _int(charge, "amount") - int(charge.get("amount_captured", captured))
    return max(0, _int(charge, "amount_refunded") - released)


# --- webhook events ----------------------------------------------------------------------------------------------


def _notice(event: Any) -> GatewayNotice:
    try:
        if not isinstance(event, dict) or event.get("object") != "event":
            raise ValueError("not an event")
        event_id, event_type, created = _str(event, "id"), _str(event, "type"), _int(event, "created")
        data = event["data"]
        obj = data["object"] if isinstance(data, dict) else None
        if not isinstance(obj, dict):
            raise ValueError("data.object is not an object")
    except (KeyError, ValueError, TypeError) as bad:
        raise WebhookRejected(f"the body is not a Stripe event ({bad})") from None
    kind, amount, reference, reason = _classify(event_type, obj)
    currency = obj.get("currency")
    return GatewayNotice(
        gateway=StripeGateway.name,
        event_id=event_id,
        kind=kind,
        occurred_at_ms=created * 1000,
        payment_id=_metadata_payment_id(obj),
        gateway_reference=_payment_intent_id(obj),
        operation_reference=reference,
        amount_minor=amount,
        currency=currency.upper() if isinstance(currency, str) else None,
        reason=reason,
        payload=event,
    )


def _classify(event_type: str, obj: JsonDict) -> tuple[NoticeKind, int | None, str | None, str | None]:
    """The notice kind, amount, operation reference and reason of one event."""
    object_id = obj.get("id") if isinstance(obj.get("id"), str) else None
    if event_type == "payment_intent.amount_capturable_updated":
        return NoticeKind.AUTHORISED, _amount(obj, "amount_capturable"), object_id, None
    if event_type == "payment_intent.payment_failed":
        error = obj.get("last_payment_error")
        reason = (error.get("decline_code") or error.get("code")) if isinstance(error, dict) else None
        return NoticeKind.AUTHORISATION_FAILED, _amount(obj, "amount"), object_id, _text(reason)
    if event_type == "payment_intent.succeeded":
        return NoticeKind.CAPTURED, _amount(obj, "amount_received"), object_id, None
    if event_type == "payment_intent.canceled":
        return NoticeKind.CANCELLED, _amount(obj, "amount"), object_id, _text(obj.get("cancellation_reason"))
    if event_type == "charge.refunded":
        return NoticeKind.REFUNDED, _amount(obj, "amount_refunded"), _latest_refund_id(obj) or object_id, None
    if event_type == "refund.failed" or (
        event_type in ("charge.refund.updated", "refund.updated") and obj.get("status") == "failed"
    ):
        return NoticeKind.REFUND_FAILED, _amount(obj, "amount"), object_id, _text(obj.get("failure_reason"))
    if event_type == "charge.dispute.created":
        return NoticeKind.DISPUTE_OPENED, _amount(obj, "amount"), object_id, _text(obj.get("reason"))
    if event_type == "charge.dispute.closed":
        kind = {"won": NoticeKind.DISPUTE_WON, "lost": NoticeKind.DISPUTE_LOST}.get(str(obj.get("status")))
        if kind is not None:
            return kind, _amount(obj, "amount"), object_id, _text(obj.get("reason"))
    return NoticeKind.OTHER, None, object_id, None


def _latest_refund_id(charge: JsonDict) -> str | None:
    refunds = charge.get("refunds")
    listed = refunds.get("data") if isinstance(refunds, dict) else None
    candidates = [r for r in listed or [] if isinstance(r, dict) and isinstance(r.get("id"), str)]
    if not candidates:
        return None
    return str(max(candidates, key=_created)["id"])


def _created(obj: JsonDict) -> int:
    created = obj.get("created")
    return created if isinstance(created, int) else 0


# --- field readers -----------------------------------------------------------------------------------------------


def _metadata_payment_id(obj: JsonDict) -> str | None:
    return _metadata(obj, "payment_id")


def _metadata(obj: JsonDict, name: str) -> str | None:
    metadata = obj.get("metadata")
    value = metadata.get(name) if isinstance(metadata, dict) else None
    return value if isinstance(value, str) and value else None


def _failure_reason(refund: JsonDict) -> str:
    """Why a refund failed: Stripe's ``failure_reason`` (failed), else its status (canceled)."""
    reason = refund.get("failure_reason")
    return reason if isinstance(reason, str) and reason else str(refund.get("status"))


def _payment_intent_id(obj: JsonDict) -> str | None:
    """The PaymentIntent an object is (or belongs to)."""
    if obj.get("object") == "payment_intent":
        return obj.get("id") if isinstance(obj.get("id"), str) else None
    intent = obj.get("payment_intent")
    if isinstance(intent, dict):  # expanded
        intent = intent.get("id")
    return intent if isinstance(intent, str) else None


def _amount(obj: JsonDict, name: str) -> int | None:
    value = obj.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _str(body: JsonDict, name: str) -> str:
    value = body[name]
    if not isinstance(value, str):
        raise TypeError(f"{name} is not a string")
    return value


def _int(body: JsonDict, name: str) -> int:
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} is not an integer")
    return value
