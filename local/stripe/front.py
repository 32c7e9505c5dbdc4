"""A real HTTP server on loopback in front of localstripe: what localstripe lacks for the paysaga Stripe adapter.

Run: ``python -m local.stripe.front --host 127.0.0.1 --port P --upstream http://127.0.0.1:Q [--db PATH]``
(``python -m local.stripe.server`` starts localstripe and this front in one process).

localstripe (PyPI) is a stateful Stripe server but has no idempotency keys, no search, no decline codes and no
faults, and it leaves out fields the adapter reads. The front adds them and passes everything else through:

| what                                   | the front                                                                  |
|----------------------------------------|----------------------------------------------------------------------------|
| ``Idempotency-Key`` on any ``POST``    | Stripe's semantics: the first answer per key is stored and replayed with   |
|                                        | ``Idempotent-Replayed: true``; the same key on another endpoint or with    |
|                                        | other parameters is a 400 ``idempotency_error``; a request while another   |
|                                        | one with the key is in flight is a 409 ``idempotency_key_in_use``. Saved,  |
|                                        | as Stripe does, once the endpoint ran: 2xx, 402 and upstream 5xx answers;  |
|                                        | validation errors are not saved (a retry runs again). Keys up to 255 chars |
| ``GET /v1/payment_intents/search``     | the query ``metadata['payment_id']:'X'`` only, from the PaymentIntents     |
|                                        | created through the front; a ``search_result`` (newest first)              |
| test tokens (``STRIPE_TOKENS``)        | declines with Stripe's 402 ``card_error`` shape (``code``,                 |
|                                        | ``decline_code``, ``message``, ``charge``, ``payment_intent``) and faults  |
| PaymentIntent / Charge objects         | completed where localstripe leaves fields out: ``amount_capturable``,      |
|                                        | ``amount_received``, ``last_payment_error`` with ``decline_code``,         |
|                                        | ``amount_captured``                                                        |
| capture / cancel / refund              | Stripe's state checks with its codes (``payment_intent_unexpected_state``, |
|                                        | ``amount_too_large``, ``charge_already_refunded``), which localstripe      |
|                                        | answers with a bare 400 or not at all (it refunds more than was captured)  |
| ``GET /v1/balance_transactions``       | Stripe's list (local/stripe/balance.py), newest first, built from          |
|                                        | localstripe's transactions and the payouts' own: ``created[gt|gte|lt|      |
|                                        | lte]``, ``payout``, ``type``, ``currency``, ``source``, ``limit`` (1-100), |
|                                        | ``starting_after``, ``ending_before``, ``expand[]=data.source``; any other |
|                                        | parameter is a 400 ``parameter_unknown``. Completed: ``fee`` per the       |
|                                        | contract terms (ledger/reconciliation/terms.py; localstripe says 0),       |
|                                        | ``fee_details``, ``net``, ``balance_type``; a partial capture is one       |
|                                        | charge of the captured amount (localstripe's release refund is left out)   |
| ``GET /v1/balance_transactions/{id}``  | one of them (``expand[]=source``)                                          |
| ``POST /v1/payouts``                   | localstripe's payout, then recorded as Stripe's automatic payouts group:   |
|                                        | every available transaction of its currency not yet paid out is its, plus  |
|                                        | its own ``payout`` transaction (-amount, fee 0), whose id is the payout's  |
|                                        | ``balance_transaction``; ``payout=po_...`` lists them. Kept in the front's |
|                                        | SQLite (``--db``): a restart keeps them                                    |
| ``GET /_calls?payment_id=``            | the call log: ``{"calls": [...]}``, rows shaped as the sandbox's           |
|                                        | (``seq, at_ms, operation, payment_id, idempotency_key, amount_minor,       |
|                                        | http_status, outcome, replayed, committed``), operations                   |
|                                        | ``authorize|capture|void|refund``, outcomes in the sandbox's words         |
|                                        | (``authorized``, ``declined``, ``captured``, ``voided``, ``refunded``, an  |
|                                        | error code, ``dropped_before_processing``, ``unavailable``,                |
|                                        | ``answer_withheld``). One authorization = one committed ``authorize`` row  |
| ``GET /_health``                       | 200 ``{"status": "ok"}`` when localstripe answers too                      |
| ``POST /_reset``                       | forget the front's state and flush localstripe's objects                   |
| ``POST /_config/webhooks/{id}``        | localstripe's webhook configuration (``url``, ``secret``, optional         |
|                                        | ``events``; JSON or form), delivered through the front's relay             |
|                                        | (``/_relay/webhooks/{id}``, local/stripe/webhooks.py): localstripe's       |
|                                        | events completed as the API answers are, plus the events it never sends    |
|                                        | (amount_capturable_updated, canceled, charge.refunded), all signed with    |
|                                        | ``Stripe-Signature`` under the endpoint's secret                           |

Test tokens (the ``payment_method`` of ``POST /v1/payment_intents``). A fault fires on the FIRST request under each
idempotency key, so it applies once to each operation of the payment (authorize, then capture, cancel, refund: the
front remembers each PaymentIntent's token) and a retry with the same key gets through. Attempts are counted in the
front's SQLite (``--db``): with a file, a restart does not re-arm a fault. Without an idempotency key no fault fires.

| token                                       | behaviour                                                          |
|---------------------------------------------|--------------------------------------------------------------------|
| ``pm_card_visa``                            | approved: ``requires_capture`` (manual capture)                    |
| ``pm_card_visa_chargeDeclined``             | 402 ``card_declined`` / decline_code ``generic_decline``           |
| ``pm_card_chargeDeclinedInsufficientFunds`` | 402 ``card_declined`` / ``insufficient_funds``                     |
| ``pm_card_chargeDeclinedFraudulent``        | 402 ``card_declined`` / ``fraudulent``                             |
| ``pm_card_chargeDeclinedExpiredCard``       | 402 ``expired_card`` / ``expired_card``                            |
| ``pm_card_visa_timeoutBeforeSend``          | first attempt NOT processed; no answer until the client gives up   |
| ``pm_card_visa_timeoutAfterCommit``         | first attempt processed and its answer saved under the key, then   |
|                                             | withheld until the client gives up; the retry replays it           |
| ``pm_card_visa_5xxThenSuccess``             | first attempt answers 500 ``api_error`` with                       |
|                                             | ``Stripe-Should-Retry: true``: nothing processed, nothing saved    |
| ``pm_card_visa_slow``                       | every request answers after ``slow_ms`` (default 200 ms)           |

Why a 500 for ``5xxThenSuccess``: Stripe documents a 5xx as indeterminate (it may have run, and its saved answer is
replayed) and marks the ones that are safe to resend with ``Stripe-Should-Retry: true``. Nothing lets a client tell
"nothing processed" from "processed, answer lost", so the faithful port reading is ``GatewayOutcomeUnknown``, resolved
by a lookup (None: nothing there) or by the retry with the same key, which this fault lets through.

A withheld answer waits until the client disconnects (its read timeout), at most ``withhold_max_ms``; a client still
there then gets a 504. Localstripe's own test cards and tokens pass through untouched.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import enum
import json
import logging
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local.server_db import JsonDict
from local.stripe.balance import BalanceBook, PayoutStore, Reply
from local.stripe.state import CallRow, FrontStore, Intent, StoredAnswer
from local.stripe.webhooks import Endpoint, WebhookRelay, endpoint_from
from local.withheld import hold_until_client_leaves
from steps.gateway.port import Operation

_log = logging.getLogger(__name__)

MAX_KEY_LENGTH = 255  # Stripe's limit on idempotency keys
SEARCH_URL = "/v1/payment_intents/search"
_FORWARDED_HEADERS = ("authorization", "content-type", "stripe-version", "stripe-account")
_CANCELABLE = frozenset(
    {"requires_payment_method", "requires_capture", "requires_confirmation", "requires_action", "processing"}
)
# metadata['payment_id']:'X' (Stripe's search language; quotes inside X escaped with a backslash)
_SEARCH_QUERY = re.compile(r"""^\s*metadata\[(['"])payment_id\1\]\s*:\s*(['"])((?:\\.|(?!\2).)*)\2\s*$""")


_Then = Callable[[Request, "Answer"], Awaitable["Answer"]]  # what a route adds once localstripe answered 200


class Fault(enum.Enum):
    NONE = "none"
    DROP_FIRST = "drop_first"  # timeout before send: nothing processed, no answer
    WITHHOLD_FIRST = "withhold_first"  # timeout after commit: processed and saved, answer lost
    ERROR_FIRST = "error_first"  # 500 with Stripe-Should-Retry: nothing processed, nothing saved
    SLOW = "slow"


@dataclass(frozen=True)
class CardDecline:
    """Stripe's card error for a declined authorization."""

    code: str
    decline_code: str
    message: str


@dataclass(frozen=True)
class TokenBehaviour:
    upstream: str  # the payment_method localstripe is given
    decline: CardDecline | None = None
    fault: Fault = Fault.NONE


_APPROVED = "pm_card_visa"
_DECLINED = "pm_card_chargeCustomerFail"  # localstripe's test card whose charge is declined (card 4000000000000341)
_GENERIC_DECLINE = CardDecline("card_declined", "generic_decline", "Your card was declined.")

STRIPE_TOKENS: dict[str, TokenBehaviour] = {
    "pm_card_visa": TokenBehaviour(_APPROVED),
    "pm_card_visa_chargeDeclined": TokenBehaviour(_DECLINED, decline=_GENERIC_DECLINE),
    "pm_card_chargeDeclinedInsufficientFunds": TokenBehaviour(
        _DECLINED, decline=CardDecline("card_declined", "insufficient_funds", "Your card has insufficient funds.")
    ),
    "pm_card_chargeDeclinedFraudulent": TokenBehaviour(
        _DECLINED, decline=CardDecline("card_declined", "fraudulent", "Your card was declined.")
    ),
    "pm_card_chargeDeclinedExpiredCard": TokenBehaviour(
        _DECLINED, decline=CardDecline("expired_card", "expired_card", "Your card has expired.")
    ),
    "pm_card_visa_timeoutBeforeSend": TokenBehaviour(_APPROVED, fault=Fault.DROP_FIRST),
    "pm_card_visa_timeoutAfterCommit": TokenBehaviour(_APPROVED, fault=Fault.WITHHOLD_FIRST),
    "pm_card_visa_5xxThenSuccess": TokenBehaviour(_APPROVED, fault=Fault.ERROR_FIRST),
    "pm_card_visa_slow": TokenBehaviour(_APPROVED, fault=Fault.SLOW),
}


@dataclass(frozen=True)
class FrontConfig:
    slow_ms: int = 200  # pm_card_visa_slow's delay
    withhold_max_ms: int = 30_000  # longest a withheld answer waits for the client to give up
    upstream_timeout_ms: int = 10_000  # each call to localstripe


@dataclass
class Answer:
    """What the front sends back. ``saved``: Stripe would save it under the idempotency key (the endpoint ran)."""

    status: int
    body: JsonDict
    saved: bool = True
    replayed: bool = False
    should_retry: bool | None = None


@dataclass(frozen=True)
class Target:
    """What a port operation's request is about, for the call log and the fault tokens."""

    operation: Operation
    payment_id: str
    amount_minor: int | None
    behaviour: TokenBehaviour | None
    intent: Intent | None = None
    extra: dict[str, str] = field(default_factory=dict)


def _error(status: int, message: str, *, type_: str = "invalid_request_error", **fields: Any) -> Answer:
    """A Stripe error body; not saved under the idempotency key (a validation failure, or one of our faults)."""
    return Answer(status, {"error": {"type": type_, "message": message, **fields}}, saved=False)


def _form(raw: bytes) -> list[tuple[str, str]]:
    try:
        return parse_qsl(raw.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return []


def _param(pairs: Sequence[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in pairs if key == name), None)


def _int(text: str | None) -> int | None:
    if text is None or not re.fullmatch(r"-?\d{1,18}", text):
        return None
    return int(text)


def _fingerprint(pairs: Sequence[tuple[str, str]]) -> str:
    return json.dumps(sorted(pairs))


def _authorized(request: Request) -> bool:
    """localstripe's rule: a secret key (``sk_...``) as Bearer or Basic credentials."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme == "Basic":
        with contextlib.suppress(ValueError):
            credentials = base64.b64decode(credentials).decode().split(":")[0]
    elif scheme != "Bearer":
        return False
    return credentials.startswith("sk_") and len(credentials) > 5


def _search_payment_id(query: str | None) -> str | None:
    match = _SEARCH_QUERY.match(query or "")
    return None if match is None else re.sub(r"\\(.)", r"\1", match.group(3))


def _outcome(operation: Operation, answer: Answer) -> str:
    """The call log's outcome, in the sandbox's words."""
    if answer.status == 402:
        return "declined"
    if answer.status == 200:
        if operation is Operation.AUTHORIZE:
            status = str(answer.body.get("status"))
            return "authorized" if status == "requires_capture" else status
        return {Operation.CAPTURE: "captured", Operation.VOID: "voided", Operation.REFUND: "refunded"}[operation]
    error = answer.body.get("error")
    if isinstance(error, dict):
        return str(error.get("code") or error.get("type") or "error")
    return f"http_{answer.status}"


def _committed(operation: Operation, answer: Answer) -> bool:
    """Did this answer change the gateway's state? A decline created a PaymentIntent (as the sandbox counts it)."""
    return answer.status == 200 or (operation is Operation.AUTHORIZE and answer.status == 402)


class StripeFront:
    def __init__(
        self, upstream_url: str, store: FrontStore, config: FrontConfig, payouts: PayoutStore | None = None
    ) -> None:
        self.store = store
        self.balance = BalanceBook(payouts or PayoutStore(":memory:"))
        self.config = config
        self._upstream = httpx.AsyncClient(base_url=upstream_url.rstrip("/"), timeout=config.upstream_timeout_ms / 1000)
        self._in_flight: set[str] = set()  # idempotency keys of requests being processed (one event loop: no lock)
        self.webhooks = WebhookRelay(self._upstream, self._complete)

    async def aclose(self) -> None:
        await self.webhooks.aclose()
        await self._upstream.aclose()
        self.store.close()
        self.balance.close()

    # --- upstream ---------------------------------------------------------------------------------------------------

    async def _forward(
        self, request: Request, method: str, path: str, *, body: bytes | None = None, complete: bool = True
    ) -> Answer:
        """Send to localstripe; complete the PaymentIntents and Charges of its answer (unless told not to yet)."""
        headers = {name: request.headers[name] for name in _FORWARDED_HEADERS if name in request.headers}
        try:
            response = await self._upstream.request(method, path, content=body, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout) as down:
            answer = _error(503, f"localstripe unreachable ({type(down).__name__})", type_="api_error")
            answer.should_retry = True
            return answer
        except httpx.HTTPError as lost:
            return _error(500, f"no answer from localstripe ({type(lost).__name__})", type_="api_error")
        try:
            body_json = response.json()
        except ValueError:
            body_json = None
        if not isinstance(body_json, dict):
            if 400 <= response.status_code < 500:  # e.g. aiohttp's own 404 for a route localstripe lacks
                return _error(response.status_code, f"Unrecognized request URL ({method} {path}).")
            return _error(500, f"localstripe answered {response.status_code} without a JSON object", type_="api_error")
        if response.status_code == 404 and isinstance(body_json.get("error"), dict):
            body_json["error"].setdefault("code", "resource_missing")  # Stripe names it; localstripe does not
        if complete:
            self._complete(body_json)
        return Answer(response.status_code, body_json)

    async def _intent_state(self, request: Request, intent_id: str) -> JsonDict | Answer:
        answer = await self._forward(request, "GET", f"/v1/payment_intents/{intent_id}")
        return answer.body if answer.status == 200 else answer

    # --- completing localstripe's objects ---------------------------------------------------------------------------

    def _complete(self, value: Any) -> None:
        if isinstance(value, list):
            for item in value:
                self._complete(item)
            return
        if not isinstance(value, dict):
            return
        for item in value.values():
            self._complete(item)
        if value.get("object") == "payment_intent":
            self._complete_intent(value)
        elif value.get("object") == "charge":
            self._complete_charge(value)
        elif value.get("object") == "payout":
            self.balance.complete_payout(value)

    def _complete_intent(self, intent: JsonDict) -> None:
        known = self.store.intent(str(intent.get("id")))
        status, amount = intent.get("status"), intent.get("amount")
        intent.setdefault("amount_capturable", amount if status == "requires_capture" else 0)
        received = amount if known is None or known.captured_minor is None else known.captured_minor
        intent.setdefault("amount_received", received if status == "succeeded" else 0)
        if known is not None and known.decline is not None and status == "requires_payment_method":
            previous = intent.get("last_payment_error")
            charge = previous.get("charge") if isinstance(previous, dict) else None
            intent["last_payment_error"] = {"type": "card_error", **known.decline, "charge": charge}

    def _complete_charge(self, charge: JsonDict) -> None:
        known = self.store.intent(str(charge.get("payment_intent")))
        captured = charge.get("amount")
        if known is not None and known.captured_minor is not None:
            captured = known.captured_minor
        charge.setdefault("amount_captured", captured if charge.get("captured") else 0)
        refunds = charge.get("refunds")
        if isinstance(refunds, dict) and isinstance(refunds.get("data"), list):
            # Stripe lists refunds newest first; localstripe sorts by the second only, oldest first within one.
            newest_first = list(reversed(refunds["data"]))
            newest_first.sort(key=lambda refund: -int(refund.get("created") or 0) if isinstance(refund, dict) else 0)
            refunds["data"] = newest_first
        if known is not None and known.decline is not None and charge.get("status") == "failed":
            charge["failure_code"] = known.decline["code"]
            charge["failure_message"] = known.decline["message"]

    # --- the idempotency layer --------------------------------------------------------------------------------------

    def _replay_or_refuse(self, key: str, endpoint: str, fingerprint: str) -> Answer | None:
        if len(key) > MAX_KEY_LENGTH:
            return _error(400, f"Idempotency keys are up to {MAX_KEY_LENGTH} characters long.")
        stored = self.store.stored(key)
        if stored is not None:
            if stored.endpoint != endpoint:
                return _error(
                    400,
                    f"Keys for idempotent requests can only be used for the same endpoint they were first used for "
                    f"({stored.endpoint}). Try using a key other than '{key}' if you meant to execute a different "
                    "request.",
                    type_="idempotency_error",
                )
            if stored.fingerprint != fingerprint:
                return _error(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters they were first used "
                    f"with. Try using a key other than '{key}' if you meant to execute a different request.",
                    type_="idempotency_error",
                )
            return Answer(stored.http_status, stored.body, replayed=True)
        if key in self._in_flight:
            return _error(
                409,
                "There is currently another in-progress request using this idempotency key (that probably means you "
                f"submitted twice, and the other request is still going through): '{key}'. Please try again later.",
                code="idempotency_key_in_use",
            )
        return None

    async def _post(self, request: Request, operation: Operation | None, *, then: _Then | None = None) -> Response:
        raw = await request.body()
        pairs = _form(raw)
        key = request.headers.get("idempotency-key")
        target = None if operation is None else await self._target(request, operation, pairs)
        row = None
        if target is not None:
            row = CallRow(target.operation.value, target.payment_id, key or "", target.amount_minor)
        if key is not None:
            refusal = self._replay_or_refuse(key, f"POST {request.url.path}", _fingerprint(pairs))
            if refusal is not None:
                self._log(row, target, refusal, replayed=refusal.replayed)
                return _respond(refusal, key)
            self._in_flight.add(key)
        try:
            fault = self._fault(key, target)
            if fault in (Fault.DROP_FIRST, Fault.ERROR_FIRST):
                return await self._fail_first(request, fault, row, key)
            if fault is Fault.SLOW:
                await asyncio.sleep(self.config.slow_ms / 1000)
            answer = await self._act(request, operation, target, pairs, raw)
            if then is not None and answer.status == 200:
                answer = await then(request, answer)  # before it is saved: a replay answers the same
            if key is not None and answer.saved:  # saved before anything else can fail: a retry replays it
                endpoint = f"POST {request.url.path}"
                self.store.store(key, StoredAnswer(endpoint, _fingerprint(pairs), answer.status, answer.body))
            self._log(row, target, answer, replayed=False)
        finally:
            self._in_flight.discard(key or "")
        await self._announce(request, operation, answer, key)
        if fault is Fault.WITHHOLD_FIRST and answer.saved:
            self._log_fault(row, 504, "answer_withheld")
            await hold_until_client_leaves(request, self.config.withhold_max_ms)
            return _respond(_error(504, "The answer was withheld.", type_="api_error"), key)
        return _respond(answer, key)

    async def _fail_first(self, request: Request, fault: Fault, row: CallRow | None, key: str | None) -> Response:
        """A first attempt that is not processed: no answer until the client gives up, or a 500 to retry."""
        if fault is Fault.ERROR_FIRST:
            self._log_fault(row, 500, "unavailable")
            answer = _error(
                500, "An error occurred with our connection to Stripe; nothing was processed.", type_="api_error"
            )
            answer.should_retry = True
            return _respond(answer, key)
        self._log_fault(row, 504, "dropped_before_processing")
        self._in_flight.discard(key or "")  # a retry may come while we still hold this one: let it through
        await hold_until_client_leaves(request, self.config.withhold_max_ms)
        return _respond(_error(504, "The request timed out; it was not processed.", type_="api_error"), key)

    def _fault(self, key: str | None, target: Target | None) -> Fault:
        """The fault this request meets: a first-attempt fault only on the first request under its key."""
        if target is None or target.behaviour is None:
            return Fault.NONE
        fault = target.behaviour.fault
        if fault in (Fault.NONE, Fault.SLOW):
            return fault
        if key is None:  # no key, no retry that could get through: first-attempt faults are not armed
            return Fault.NONE
        return fault if self.store.count_attempt(key) == 1 else Fault.NONE

    def _log(self, row: CallRow | None, target: Target | None, answer: Answer, *, replayed: bool) -> None:
        if row is None or target is None:
            return
        self.store.log_call(
            row,
            http_status=answer.status,
            outcome=_outcome(target.operation, answer),
            replayed=replayed,
            committed=not replayed and _committed(target.operation, answer),
        )

    def _log_fault(self, row: CallRow | None, http_status: int, outcome: str) -> None:
        if row is not None:
            self.store.log_call(row, http_status=http_status, outcome=outcome, replayed=False, committed=False)

    # --- the port's operations --------------------------------------------------------------------------------------

    async def _target(self, request: Request, operation: Operation, pairs: list[tuple[str, str]]) -> Target:
        if operation is Operation.AUTHORIZE:
            token = _param(pairs, "payment_method") or ""
            return Target(
                operation,
                payment_id=_param(pairs, "metadata[payment_id]") or "",
                amount_minor=_int(_param(pairs, "amount")),
                behaviour=STRIPE_TOKENS.get(token),
            )
        intent_id = (
            _param(pairs, "payment_intent") if operation is Operation.REFUND else request.path_params["intent_id"]
        ) or ""
        intent = self.store.intent(intent_id)
        amount_name = {Operation.CAPTURE: "amount_to_capture", Operation.REFUND: "amount"}.get(operation)
        return Target(
            operation,
            payment_id=(intent.payment_id or "") if intent is not None else "",
            amount_minor=None if amount_name is None else _int(_param(pairs, amount_name)),
            behaviour=None if intent is None else STRIPE_TOKENS.get(intent.token),
            intent=intent,
            extra={"intent_id": intent_id},
        )

    async def _act(
        self,
        request: Request,
        operation: Operation | None,
        target: Target | None,
        pairs: list[tuple[str, str]],
        raw: bytes,
    ) -> Answer:
        if operation is None or target is None:
            return await self._forward(request, "POST", request.url.path, body=raw)
        if operation is Operation.AUTHORIZE:
            return await self._authorize(request, target, pairs)
        intent_id = target.extra["intent_id"]
        if operation is Operation.REFUND and not intent_id:
            return await self._forward(request, "POST", request.url.path, body=raw)  # a refund by charge
        state = await self._intent_state(request, intent_id)
        if isinstance(state, Answer):
            state.saved = False
            return state
        refusal = _refusal(operation, state, target.amount_minor)
        if refusal is not None:
            return refusal
        answer = await self._forward(request, "POST", request.url.path, body=raw, complete=False)
        if operation is Operation.CAPTURE and answer.status == 200:
            captured = target.amount_minor if target.amount_minor is not None else int(state["amount"])
            self.store.set_captured(intent_id, captured)
        self._complete(answer.body)  # after the captured amount is known
        return answer

    async def _announce(self, request: Request, operation: Operation | None, answer: Answer, key: str | None) -> None:
        """The webhook events localstripe does not send for what was just done (webhooks.py)."""
        if not self.webhooks.active or answer.status != 200:
            return
        if operation is Operation.AUTHORIZE and answer.body.get("status") == "requires_capture":
            self.webhooks.emit("payment_intent.amount_capturable_updated", answer.body, key)
        elif operation is Operation.VOID:
            self.webhooks.emit("payment_intent.canceled", answer.body, key)
        elif operation is Operation.REFUND:
            charge = await self._forward(request, "GET", f"/v1/charges/{answer.body.get('charge')}")
            if charge.status == 200:
                self.webhooks.emit("charge.refunded", charge.body, key)

    async def _authorize(self, request: Request, target: Target, pairs: list[tuple[str, str]]) -> Answer:
        token = _param(pairs, "payment_method") or ""
        behaviour = target.behaviour
        if behaviour is not None:
            pairs = [(k, behaviour.upstream if k == "payment_method" else v) for k, v in pairs]
        answer = await self._forward(request, "POST", "/v1/payment_intents", body=urlencode(pairs).encode())
        if answer.status == 200:
            self._remember(str(answer.body.get("id")), target, token, decline=None)
            self._complete(answer.body)
            return answer
        if answer.status == 402:
            return await self._declined(request, answer, target, token)
        if answer.status == 404:  # an unknown payment_method: Stripe says 400 resource_missing on this parameter
            message = f"No such PaymentMethod: '{token}'"
            return _error(400, message, code="resource_missing", param="payment_method")
        if answer.status == 400:
            answer.saved = False  # localstripe validates before it acts: nothing ran
        return answer

    def _remember(self, intent_id: str, target: Target, token: str, decline: CardDecline | None) -> None:
        self.store.add_intent(
            Intent(
                intent_id=intent_id,
                payment_id=target.payment_id or None,
                token=token,
                amount_minor=target.amount_minor or 0,
                captured_minor=None,
                decline=None
                if decline is None
                else {"code": decline.code, "decline_code": decline.decline_code, "message": decline.message},
            )
        )

    async def _declined(self, request: Request, answer: Answer, target: Target, token: str) -> Answer:
        """localstripe's 402 names the failed charge only: find its PaymentIntent and answer Stripe's card error."""
        error = answer.body.get("error")
        charge_id = error.get("charge") if isinstance(error, dict) else None
        charge = await self._forward(request, "GET", f"/v1/charges/{charge_id}")
        intent_id = charge.body.get("payment_intent") if charge.status == 200 else None
        if not isinstance(intent_id, str):
            return _error(500, "localstripe declined a charge of no PaymentIntent", type_="api_error")
        decline = target.behaviour.decline if target.behaviour is not None else None
        self._remember(intent_id, target, token, decline=decline or _GENERIC_DECLINE)
        state = await self._intent_state(request, intent_id)
        if isinstance(state, Answer):
            return state
        lpe = state.get("last_payment_error")
        card_error = {
            **(lpe if isinstance(lpe, dict) else {}),
            "charge": charge_id,
            "doc_url": f"https://stripe.com/docs/error-codes/{(decline or _GENERIC_DECLINE).code.replace('_', '-')}",
            "payment_intent": state,
            "request_log_url": None,
        }
        return Answer(402, {"error": card_error})

    # --- routes -----------------------------------------------------------------------------------------------------

    async def create_intent(self, request: Request) -> Response:
        return await self._post(request, Operation.AUTHORIZE)

    async def capture(self, request: Request) -> Response:
        return await self._post(request, Operation.CAPTURE)

    async def cancel(self, request: Request) -> Response:
        return await self._post(request, Operation.VOID)

    async def refund(self, request: Request) -> Response:
        return await self._post(request, Operation.REFUND)

    async def create_payout(self, request: Request) -> Response:
        return await self._post(request, None, then=self._record_payout)

    async def _record_payout(self, request: Request, answer: Answer) -> Answer:
        failed = await self.balance.record_payout(answer.body, self._fetcher(request))
        return answer if failed is None else Answer(failed[0], failed[1], saved=False)

    def _fetcher(self, request: Request) -> Callable[[str], Awaitable[Reply]]:
        async def fetch(path: str) -> Reply:
            answer = await self._forward(request, "GET", path)
            return answer.status, answer.body

        return fetch

    async def balance_transactions(self, request: Request) -> Response:
        if not _authorized(request):
            return _respond(_error(401, "You did not provide a valid API key."), None)
        pairs = request.query_params.multi_items()
        status, body = await self.balance.list_transactions(pairs, self._fetcher(request))
        return _respond(Answer(status, body), None)

    async def balance_transaction(self, request: Request) -> Response:
        if not _authorized(request):
            return _respond(_error(401, "You did not provide a valid API key."), None)
        pairs = request.query_params.multi_items()
        status, body = await self.balance.retrieve(request.path_params["txn_id"], pairs, self._fetcher(request))
        return _respond(Answer(status, body), None)

    async def passthrough(self, request: Request) -> Response:
        if request.method == "POST":
            return await self._post(request, None)
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return _respond(await self._forward(request, request.method, path, body=await request.body()), None)

    async def search(self, request: Request) -> Response:
        if not _authorized(request):
            return _respond(_error(401, "You did not provide a valid API key."), None)
        payment_id = _search_payment_id(request.query_params.get("query"))
        if payment_id is None:
            message = "This local server searches PaymentIntents by metadata['payment_id']:'<id>' only."
            return _respond(_error(400, message, code="parameter_invalid_string", param="query"), None)
        limit = _int(request.query_params.get("limit")) or 10
        if not 1 <= limit <= 100:
            return _respond(_error(400, "limit must be from 1 to 100", param="limit"), None)
        intents = self.store.intents_of(payment_id)
        found: list[JsonDict] = []
        for intent in intents[:limit]:
            state = await self._intent_state(request, intent.intent_id)
            if isinstance(state, Answer):
                if state.status != 404:  # forgotten by localstripe (restarted without its state): not found
                    return _respond(state, None)
                continue
            found.append(state)
        body = {
            "object": "search_result",
            "url": SEARCH_URL,
            "has_more": len(intents) > limit,
            "data": found,
            "next_page": None,
        }
        return _respond(Answer(200, body), None)

    async def calls(self, request: Request) -> Response:
        return JSONResponse({"calls": self.store.calls(request.query_params.get("payment_id"))})

    async def health(self, request: Request) -> Response:
        try:
            response = await self._upstream.get("/v1/balance", headers={"authorization": "Bearer sk_test_health"})
        except httpx.HTTPError as down:
            return JSONResponse({"status": "unhealthy", "detail": f"localstripe: {type(down).__name__}"}, 503)
        if response.status_code != 200:
            return JSONResponse({"status": "unhealthy", "detail": f"localstripe answered {response.status_code}"}, 503)
        return JSONResponse({"status": "ok"})

    async def reset(self, request: Request) -> Response:
        self.store.reset()
        self.balance.reset()
        response = await self._upstream.delete("/_config/data")
        return JSONResponse({"reset": True, "localstripe": response.status_code})

    async def configure_webhook(self, request: Request) -> Response:
        """localstripe's webhook configuration (JSON or form: ``url``, ``secret``, ``events``), delivered through the
        relay (webhooks.py). The body carries the endpoint's secret: never logged."""
        raw = await request.body()
        try:
            config: Any = json.loads(raw)
        except ValueError:
            pairs = _form(raw)
            events = [value for name, value in pairs if name.startswith("events[")]
            config = {"url": _param(pairs, "url"), "secret": _param(pairs, "secret"), "events": events or None}
        endpoint = endpoint_from(config)
        if endpoint is None:
            return _respond(_error(400, "Bad request: url (http...), secret and an optional events list"), None)
        status = await self.webhooks.register(request.path_params["hook_id"], endpoint, str(request.base_url))
        return Response(status_code=status)

    async def relay_webhook(self, request: Request) -> Response:
        """An event from localstripe, to complete and deliver."""
        signature = request.headers.get("stripe-signature", "")
        status = await self.webhooks.relay(request.path_params["hook_id"], await request.body(), signature)
        return Response(status_code=status)


def _refusal(operation: Operation, state: JsonDict, amount_minor: int | None) -> Answer | None:
    """Stripe's checks on capture, cancel and refund, with its error codes (localstripe's are bare or missing)."""
    status = state.get("status")
    intent_id = state.get("id")
    if operation is Operation.CAPTURE:
        if status != "requires_capture":
            return _unexpected_state(intent_id, status, "captured", "requires_capture")
        if amount_minor is not None and not 0 < amount_minor <= int(state.get("amount_capturable") or 0):
            message = f"The amount to capture ({amount_minor}) is greater than the amount capturable."
            return _error(400, message, code="amount_too_large", param="amount_to_capture")
        return None
    if operation is Operation.VOID:
        if status not in _CANCELABLE:
            return _unexpected_state(intent_id, status, "canceled", ", ".join(sorted(_CANCELABLE)))
        return None
    if status != "succeeded":
        return _unexpected_state(intent_id, status, "refunded", "succeeded")
    refundable = _refundable(state)
    if refundable <= 0:
        return _error(
            400, f"Charge for PaymentIntent {intent_id} has already been refunded.", code="charge_already_refunded"
        )
    if amount_minor is not None and amount_minor > refundable:
        message = f"Refund amount ({amount_minor}) is greater than unrefunded amount on charge ({refundable})"
        return _error(400, message, code="amount_too_large", param="amount")
    return None


def _refundable(state: JsonDict) -> int:
    """What is left to refund. Stripe's ``amount_refunded`` counts the part a partial capture released."""
    charge = state.get("latest_charge")
    if not isinstance(charge, dict):
        return int(state.get("amount_received") or 0)
    released = int(charge.get("amount") or 0) - int(charge.get("amount_captured") or 0)
    refunded = int(charge.get("amount_refunded") or 0) - released
    return int(charge.get("amount_captured") or 0) - refunded


def _unexpected_state(intent_id: object, status: object, verb: str, allowed: str) -> Answer:
    message = (
        f"This PaymentIntent ({intent_id}) could not be {verb} because it has a status of {status}. "
        f"Only a PaymentIntent with one of the following statuses may be {verb}: {allowed}."
    )
    return _error(400, message, code="payment_intent_unexpected_state")


def _respond(answer: Answer, key: str | None) -> Response:
    headers = {"Request-Id": "req_" + secrets.token_hex(7)}
    if key is not None:
        headers["Idempotency-Key"] = key
    if answer.replayed:
        headers["Idempotent-Replayed"] = "true"
    if answer.should_retry is not None:
        headers["Stripe-Should-Retry"] = "true" if answer.should_retry else "false"
    return JSONResponse(answer.body, status_code=answer.status, headers=headers)


def create_app(
    upstream_url: str,
    db_path: Path | str = ":memory:",
    config: FrontConfig | None = None,
    *,
    webhooks: Mapping[str, Endpoint] | None = None,
    self_url: str | None = None,
) -> Starlette:
    """The front's application. ``webhooks`` are registered at startup; localstripe reaches the relay at
    ``self_url`` (the front's own base URL, required with them)."""
    front = StripeFront(upstream_url, FrontStore(db_path), config or FrontConfig(), PayoutStore(db_path))
    if webhooks and self_url is None:
        raise ValueError("self_url is required to register webhooks at startup")

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        for hook_id, endpoint in (webhooks or {}).items():
            assert self_url is not None
            status = await front.webhooks.register(hook_id, endpoint, self_url)
            if status != 200:
                raise RuntimeError(f"localstripe refused webhook {hook_id!r} ({status})")
        yield
        await front.aclose()

    routes = [
        Route("/v1/payment_intents", front.create_intent, methods=["POST"]),
        Route("/v1/payment_intents/search", front.search, methods=["GET"]),
        Route("/v1/payment_intents/{intent_id}/capture", front.capture, methods=["POST"]),
        Route("/v1/payment_intents/{intent_id}/cancel", front.cancel, methods=["POST"]),
        Route("/v1/refunds", front.refund, methods=["POST"]),
        Route("/v1/payouts", front.create_payout, methods=["POST"]),
        Route("/v1/balance_transactions", front.balance_transactions, methods=["GET"]),
        Route("/v1/balance_transactions/{txn_id}", front.balance_transaction, methods=["GET"]),
        Route("/v1/{rest:path}", front.passthrough, methods=["GET", "POST", "DELETE"]),
        Route("/_calls", front.calls, methods=["GET"]),
        Route("/_health", front.health, methods=["GET"]),
        Route("/_reset", front.reset, methods=["POST"]),
        Route("/_config/webhooks/{hook_id}", front.configure_webhook, methods=["POST"]),
        Route("/_relay/webhooks/{hook_id}", front.relay_webhook, methods=["POST"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The paysaga Stripe front (in front of localstripe).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="localstripe's base URL, e.g. http://127.0.0.1:8420")
    parser.add_argument("--db", default=":memory:", help="SQLite file for the front's state (default: in memory)")
    parser.add_argument("--slow-ms", type=int, default=FrontConfig.slow_ms)
    parser.add_argument("--withhold-max-ms", type=int, default=FrontConfig.withhold_max_ms)
    args = parser.parse_args(argv)
    config = FrontConfig(slow_ms=args.slow_ms, withhold_max_ms=args.withhold_max_ms)
    uvicorn.run(
        create_app(args.upstream, args.db, config),
        host=args.host,
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=2,
    )


if __name__ == "__main__":
    main()
