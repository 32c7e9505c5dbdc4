"""A local Adyen Checkout API v71 server, for tests and the local stack: what the Adyen adapter
(steps/gateway/adyen.py) talks to through Adyen's own Python SDK.

Run: ``python -m local.adyen.server --host 127.0.0.1 --port P --db PATH [--spec PATH] [--webhooks-spec PATH]
[--api-key KEY] [--merchant-account NAME] [--webhook-url URL --hmac-key HEX] [--settle-after-ms N] [--slow-ms N]``.
The API key and HMAC key default to ``$ADYEN_API_KEY`` and ``$ADYEN_HMAC_KEY`` (as the local stack sets them), so
secrets need not appear on the command line. The specs default to ``../shared/oracles/adyen/`` from the project root.

Every request is validated against Adyen's published spec (CheckoutService-v71.json, read at startup): one the real
Adyen would refuse is answered 422 with Adyen's ServiceError ``{status, errorCode, message, errorType}``. Every answer
is validated too: an answer the spec does not allow is a bug here, answered 500 (and logged, and rolled back). Every
webhook is validated against Webhooks-v1.json before it is queued.

| request                                                | answer                                                    |
|--------------------------------------------------------|-----------------------------------------------------------|
| ``POST /v71/payments``                                 | 200 PaymentResponse: Authorised, or Refused with          |
|                                                        | refusalReason/refusalReasonCode; an AUTHORISATION webhook |
| ``POST /v71/payments/{paymentPspReference}/captures``  | 201 ``status: received``; later CAPTURE / CAPTURE_FAILED  |
| ``POST /v71/payments/{paymentPspReference}/cancels``   | 201 ``status: received``; later CANCELLATION              |
| ``POST /v71/payments/{paymentPspReference}/refunds``   | 201 ``status: received``; later REFUND / REFUND_FAILED    |
| ``POST /v71/cancels`` (by ``paymentReference``)        | 201 ``status: received``; later TECHNICAL_CANCEL          |
| ``GET  /_calls?payment_id=``                           | the call log, rows as the sandbox's                       |
| ``GET  /_adyen/notifications?payment_id=``             | the webhooks queued (delivered or not), oldest first      |
| ``POST /_adyen/settle?payment_id=&outcome=``           | settle the payment's pending modifications now;           |
|                                                        | ``outcome`` success / failure, else the card token's plan |
| ``GET  /_health``                                      | ``{"status": "ok", ...}``                                 |

Authentication: the ``X-API-Key`` header must be ``--api-key`` (401 otherwise); ``merchantAccount`` must be
``--merchant-account`` (403, errorCode 901). Payments must be manual-capture (``additionalData.manualCapture: "true"``;
``captureDelayHours`` is a delayed *automatic* capture in v71, refused here since the saga captures itself) with a
stored card: ``paymentMethod: {type: scheme, storedPaymentMethodId: <token>}``, ``shopperReference``,
``shopperInteraction: ContAuth`` and a ``recurringProcessingModel``.

Idempotency (``Idempotency-Key``, at most 64 characters): the first committed answer of a key is stored and replayed;
the same key with another request is a 422 (errorCode 704). Error codes this server uses, after Adyen's: 000
(unauthorised), 702 (the request breaks the spec or a rule above), 704 (key reused), 137 (amount not positive), 167
(unknown pspReference), 803 (unknown stored payment method), 901 (merchant account).

Card tokens are the sandbox's (local/sandbox/server.py, ``SANDBOX_TOKENS``) plus ``tok_expired_card``
(local/adyen/tokens.py). Declines answer ``resultCode: Refused`` with Adyen's refusal reasons (state.REFUSALS):
card_declined → Refused (2), expired_card → Expired Card (6), insufficient_funds → Not enough balance (12),
fraudulent → FRAUD (20). Every capture is asynchronous at Adyen: tok_approve / tok_async_capture settle to CAPTURE
success; tok_async_capture_fails to CAPTURE_FAILED; tok_capture_fails to CAPTURE success "false". Refunds settle to
REFUND success, except those of a payment authorized with tok_refund_declined (REFUND success "false", reason "Refund
declined") and those beyond what is captured and not refunded yet: Adyen accepts ("received") any refund of a known
payment and refuses it later, by webhook (REFUND success "false"); forced failures (``outcome=failure``) settle to
REFUND_FAILED. A refund's webhook carries the refund request's ``reference`` as merchantReference (the saga sends our
refund id there), its own pspReference and the payment's as originalReference. Faults, on the
first attempt under an idempotency key, as the sandbox's: tok_timeout_before_send (not processed, no answer until the
client gives up), tok_timeout_after_commit (processed, answer withheld until the client gives up), tok_5xx_then_success
(503, nothing processed), tok_slow (answers after ``--slow-ms``). Fault answers (503, 504) are the infrastructure's,
not the API's, so the spec does not check them.

Webhooks (``--webhook-url``, needs ``--hmac-key``): each NotificationRequest holds one item signed with the SDK's
``generate_notification_sig``; it is POSTed until the receiver answers 2xx (Adyen expects the body ``[accepted]``),
retried after ``--webhook-retry-ms``, doubling up to 10 s. Modifications settle after ``--settle-after-ms`` (never by
themselves without it) or on ``/_adyen/settle``. The webhook outbox lives in SQLite with the rest, so a restart loses
none.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local.adyen.spec import DEFAULT_CHECKOUT_SPEC, DEFAULT_WEBHOOKS_SPEC, CheckoutSpec, SpecRequest, WebhooksSpec
from local.adyen.state import AdyenStore, Answer, ApiCall, Kind, Outgoing, Status, fingerprint, service_error
from local.adyen.tokens import TOKENS, Fault
from local.withheld import hold_until_client_leaves
from steps.gateway.port import GatewayStatus

_SNAPSHOT_STATUS = {Status.AUTHORISED: GatewayStatus.AUTHORIZED, Status.REFUSED: GatewayStatus.DECLINED,
                    Status.CAPTURED: GatewayStatus.CAPTURED, Status.CAPTURE_FAILED: GatewayStatus.CAPTURE_FAILED,
                    Status.CANCELLED: GatewayStatus.VOIDED, Status.REFUNDED: GatewayStatus.REFUNDED}

_log = logging.getLogger(__name__)

DEFAULT_API_KEY = "local_adyen_api_key"  # a local server's key: not a secret
DEFAULT_MERCHANT_ACCOUNT = "PaysagaLocalECOM"
MAX_IDEMPOTENCY_KEY = 64  # Adyen's limit
PUMP_INTERVAL_S = 0.05  # how often settlement and webhook retries are looked at when nothing wakes the pump
WEBHOOK_RETRY_MAX_MS = 10_000
_CURRENCY = re.compile(r"^[A-Z]{3}$")
JsonDict = dict[str, Any]


@dataclass(frozen=True)
class AdyenConfig:
    api_key: str = DEFAULT_API_KEY
    merchant_account: str = DEFAULT_MERCHANT_ACCOUNT
    webhook_url: str | None = None
    hmac_key: str | None = None  # hex, as Adyen's Customer Area shows it
    settle_after_ms: int | None = None  # None: modifications settle only on /_adyen/settle
    slow_ms: int = 200  # tok_slow's delay
    withhold_max_ms: int = 30_000  # longest a withheld answer waits for the client to give up
    webhook_retry_ms: int = 100  # first retry delay of a webhook the receiver refused
    webhook_timeout_ms: int = 2_000

    def __post_init__(self) -> None:
        if self.webhook_url is not None and self.hmac_key is None:
            raise ValueError("a webhook URL needs an HMAC key: Adyen signs every notification item")
        if self.hmac_key is not None:
            bytes.fromhex(self.hmac_key)  # ValueError now rather than at the first webhook


class Refused(Exception):
    """A request this server refuses before acting: ``answer`` is the ServiceError to send."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.body.get("message"))
        self.answer = answer


class AnswerInvalid(Exception):
    """An answer (or webhook) of ours that Adyen's spec does not allow: a bug in this server."""


def _invalid(message: str, code: str = "702") -> Refused:
    return Refused(service_error(422, code, message, "validation"))


def _str(body: JsonDict, name: str) -> str | None:
    value = body.get(name)
    return value if isinstance(value, str) else None


class AdyenApp:
    def __init__(self, store: AdyenStore, spec: CheckoutSpec, config: AdyenConfig) -> None:
        self.store = store
        self.spec = spec
        self.config = config
        self._wake = asyncio.Event()

    # --- answers --------------------------------------------------------------------------------------------------

    def _checked(self, spec_request: SpecRequest, answer: Answer) -> None:
        errors = self.spec.response_errors(spec_request, answer.http_status, answer.body)
        if errors:
            raise AnswerInvalid("; ".join(errors))

    def _respond(self, spec_request: SpecRequest, answer: Answer, key: str | None) -> Response:
        try:
            self._checked(spec_request, answer)
        except AnswerInvalid as bug:
            _log.error("answer to %s breaks Adyen's spec: %s", spec_request.path, bug)
            answer = service_error(500, "000", f"local Adyen server bug: {bug}", "internal")
        headers = {"Idempotency-Key": key} if key is not None else None
        return JSONResponse(answer.body, status_code=answer.http_status, headers=headers)

    # --- the API --------------------------------------------------------------------------------------------------

    async def _operate(self, request: Request, kind: str) -> Response:
        raw = await request.body()
        headers = {name.lower(): value for name, value in request.headers.items()}
        spec_request = self.spec.request("POST", request.url.path, headers, raw)
        key = headers.get("idempotency-key")
        given = headers.get("x-api-key", "")
        if not secrets.compare_digest(given.encode(), self.config.api_key.encode()):
            unauthorised = service_error(401, "000", "HTTP Status Response - Unauthorized", "security")
            return self._respond(spec_request, unauthorised, None)
        try:
            call = self._call(request, kind, spec_request, raw, key)
        except Refused as refused:
            return self._respond(spec_request, refused.answer, key)
        return await self._run(request, spec_request, call)

    def _call(self, request: Request, kind: str, spec_request: SpecRequest, raw: bytes, key: str | None) -> ApiCall:
        """The validated request, or Refused with the ServiceError Adyen would answer."""
        errors = self.spec.request_errors(spec_request)
        if errors:
            _log.warning("request to %s breaks Adyen's spec: %s", request.url.path, "; ".join(errors))
            raise _invalid("; ".join(errors))
        if not raw.strip():  # the spec leaves requestBody optional; Adyen refuses an empty one
            raise _invalid("the request body is empty")
        body: JsonDict = json.loads(raw)
        if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY:
            raise _invalid(f"Idempotency-Key must have 1 to {MAX_IDEMPOTENCY_KEY} characters (got {len(key)})")
        if body.get("merchantAccount") != self.config.merchant_account:
            raise Refused(service_error(403, "901", "Invalid Merchant Account", "security"))
        base = {"key": key, "fingerprint": fingerprint("POST", request.url.path, body)}
        if kind == Kind.PAYMENT:
            return self._payment_call(body, base)
        amount_minor, currency = _amount(body) if kind in (Kind.CAPTURE, Kind.REFUND) else (None, None)
        common = {**base, "merchant_account": body["merchantAccount"], "reference": _str(body, "reference")}
        if kind == Kind.TECHNICAL_CANCEL:
            return ApiCall(kind=kind, payment_id=body["paymentReference"], **common)
        psp_reference = request.path_params["paymentPspReference"]
        payment = self.store.payment(psp_reference)
        if payment is None:
            raise _invalid("Original pspReference is invalid for this environment!", code="167")
        return ApiCall(
            kind=kind,
            payment_id=str(payment["merchant_reference"]),
            amount_minor=amount_minor,
            currency=currency,
            payment_psp=psp_reference,
            **common,
        )

    def _payment_call(self, body: JsonDict, base: JsonDict) -> ApiCall:
        method = body["paymentMethod"]
        token = method.get("storedPaymentMethodId") if method.get("type") == "scheme" else None
        if not isinstance(token, str) or token not in TOKENS:
            raise _invalid(f"PaymentDetail not found (stored card tokens: {sorted(TOKENS)})", code="803")
        if not body.get("shopperReference"):
            raise _invalid("shopperReference is required with a storedPaymentMethodId")
        if body.get("shopperInteraction") != "ContAuth" or "recurringProcessingModel" not in body:
            raise _invalid("a stored card without the shopper needs shopperInteraction ContAuth and a "
                           "recurringProcessingModel")
        if body.get("additionalData", {}).get("manualCapture") != "true":
            raise _invalid('manual capture required: additionalData.manualCapture must be "true" (this server '
                           "takes no automatic or captureDelayHours capture)")
        amount_minor, currency = _amount(body)
        if not body["reference"]:
            raise _invalid("reference must not be empty")
        return ApiCall(
            kind=Kind.PAYMENT,
            payment_id=body["reference"],
            merchant_account=body["merchantAccount"],
            amount_minor=amount_minor,
            currency=currency,
            card_token=token,
            behaviour=TOKENS[token],
            **base,
        )

    def _token_of(self, call: ApiCall) -> str | None:
        if call.card_token is not None:
            return call.card_token
        payment = (
            self.store.payment(call.payment_psp)
            if call.payment_psp is not None
            else self.store.latest_payment(call.payment_id)
        )
        return None if payment is None else str(payment["card_token"])

    async def _run(self, request: Request, spec_request: SpecRequest, call: ApiCall) -> Response:
        token = self._token_of(call)
        fault = Fault.NONE if token is None else TOKENS[token].fault
        # Without a key every retry is a new request at Adyen; faults still hit only the first.
        attempt_key = call.key or f"no-key:{call.kind}:{call.payment_id}"
        first = fault is not Fault.NONE and self.store.count_attempt(attempt_key) == 1
        if first and fault is Fault.DROP_FIRST:
            self.store.log_call(call, http_status=504, outcome="dropped_before_processing")
            await hold_until_client_leaves(request, self.config.withhold_max_ms)
            return _infrastructure(504, "Gateway Timeout: the request was not processed")
        if first and fault is Fault.UNAVAILABLE_FIRST:
            self.store.log_call(call, http_status=503, outcome="unavailable")
            return _infrastructure(503, "Service Unavailable: nothing was processed")
        if fault is Fault.SLOW:
            await asyncio.sleep(self.config.slow_ms / 1000)
        try:
            answer = self.store.execute(call, lambda answer: self._checked(spec_request, answer))
        except AnswerInvalid as bug:
            _log.error("answer to %s breaks Adyen's spec (rolled back): %s", request.url.path, bug)
            self.store.log_call(call, http_status=500, outcome="server_bug")
            bug_answer = service_error(500, "000", f"local Adyen server bug: {bug}", "internal")
            return JSONResponse(bug_answer.body, status_code=500)
        self._wake.set()  # a webhook may be queued
        if first and fault is Fault.WITHHOLD_FIRST:
            self.store.log_call(call, http_status=504, outcome="answer_withheld")
            await hold_until_client_leaves(request, self.config.withhold_max_ms)
            return _infrastructure(504, "Gateway Timeout: the answer was withheld")
        return self._respond(spec_request, answer, call.key)

    async def payments(self, request: Request) -> Response:
        return await self._operate(request, Kind.PAYMENT)

    async def captures(self, request: Request) -> Response:
        return await self._operate(request, Kind.CAPTURE)

    async def cancels(self, request: Request) -> Response:
        return await self._operate(request, Kind.CANCEL)

    async def refunds(self, request: Request) -> Response:
        return await self._operate(request, Kind.REFUND)

    async def technical_cancels(self, request: Request) -> Response:
        return await self._operate(request, Kind.TECHNICAL_CANCEL)

    # --- test controls --------------------------------------------------------------------------------------------

    async def calls(self, request: Request) -> Response:
        return JSONResponse({"calls": self.store.calls(request.query_params.get("payment_id"))})

    async def notifications(self, request: Request) -> Response:
        return JSONResponse({"notifications": self.store.notifications(request.query_params.get("payment_id"))})

    async def settle(self, request: Request) -> Response:
        payment_id = request.query_params.get("payment_id")
        outcome = request.query_params.get("outcome")
        if not payment_id:
            return JSONResponse({"error": "payment_id is required"}, status_code=400)
        if outcome not in (None, "success", "failure"):
            return JSONResponse({"error": "outcome must be success or failure (or absent)"}, status_code=400)
        try:
            items = self.store.settle_payment(payment_id, None if outcome is None else outcome == "success")
        except AnswerInvalid as bug:
            _log.error("webhook for %s breaks Adyen's spec (rolled back): %s", payment_id, bug)
            return JSONResponse({"error": f"local Adyen server bug: {bug}"}, status_code=500)
        if not items:
            return JSONResponse({"error": f"no pending modification for {payment_id}"}, status_code=409)
        self._wake.set()
        return JSONResponse({"settled": items})

    async def snapshot(self, request: Request) -> Response:
        """The payment as this server holds it, in the sandbox's lookup shape (GatewayStatus words): what the
        simulation and the tests compare the saga's records with. Real Adyen has no such read API."""
        payment_id = request.path_params["payment_id"]
        row = self.store.latest_payment(payment_id)
        if row is None:
            return JSONResponse({"error": f"no payment {payment_id}"}, status_code=404)
        status = _SNAPSHOT_STATUS[row["status"]]
        if status == GatewayStatus.AUTHORIZED and self.store.capture_pending(row["psp_reference"]):
            status = GatewayStatus.CAPTURE_SUBMITTED
        return JSONResponse({"payment_id": payment_id, "gateway_reference": row["psp_reference"],
                             "status": status.value, "amount_minor": row["amount_minor"], "currency": row["currency"],
                             "captured_minor": row["captured_minor"], "refunded_minor": row["refunded_minor"]})

    async def health(self, request: Request) -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "merchant_account": self.config.merchant_account,
                "webhook_url": self.config.webhook_url,
                "settle_after_ms": self.config.settle_after_ms,
                "spec": str(self.spec.path),
            }
        )

    # --- settlement and webhook delivery --------------------------------------------------------------------------

    async def pump(self) -> None:
        """Forever: settle what is due, deliver what is due; woken early when a request queued a webhook."""
        timeout = httpx.Timeout(self.config.webhook_timeout_ms / 1000)
        async with httpx.AsyncClient(timeout=timeout) as client:
            while True:
                try:
                    if self.config.settle_after_ms is not None:
                        self.store.settle_due(self.config.settle_after_ms)
                    if self.config.webhook_url is not None:
                        for outgoing in self.store.due_notifications():
                            await self._deliver(client, self.config.webhook_url, outgoing)
                except AnswerInvalid as bug:
                    _log.error("a settling modification's webhook breaks Adyen's spec (rolled back): %s", bug)
                except Exception:  # the pump must outlive any one failure; the next round tries again
                    _log.exception("settlement/webhook round failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), PUMP_INTERVAL_S)
                self._wake.clear()

    async def _deliver(self, client: httpx.AsyncClient, url: str, outgoing: Outgoing) -> None:
        retry_in_ms = min(self.config.webhook_retry_ms * 2**outgoing.attempts, WEBHOOK_RETRY_MAX_MS)
        try:
            response = await client.post(url, json=outgoing.body)
        except httpx.HTTPError as error:
            self.store.mark_failed(outgoing, error=f"{type(error).__name__}: {error}", retry_in_ms=retry_in_ms)
            return
        if not 200 <= response.status_code < 300:
            self.store.mark_failed(outgoing, error=f"HTTP {response.status_code}", retry_in_ms=retry_in_ms)
            return
        if response.text.strip() != "[accepted]":
            _log.warning("webhook receiver answered %d without [accepted]", response.status_code)
        self.store.mark_delivered(outgoing)


def _amount(body: JsonDict) -> tuple[int, str]:
    amount = body["amount"]
    value, currency = amount["value"], amount["currency"]
    if value <= 0:
        raise _invalid("Invalid amount specified", code="137")
    if not _CURRENCY.match(currency):
        raise _invalid(f"Invalid currency {currency!r}")
    return int(value), str(currency)


def _infrastructure(http_status: int, message: str) -> Response:
    answer = service_error(http_status, "000", message, "internal")
    return JSONResponse(answer.body, status_code=http_status)


def create_app(
    db_path: Path,
    config: AdyenConfig | None = None,
    *,
    spec_path: Path = DEFAULT_CHECKOUT_SPEC,
    webhooks_spec_path: Path = DEFAULT_WEBHOOKS_SPEC,
) -> Starlette:
    config = config or AdyenConfig()
    spec, webhooks = CheckoutSpec(spec_path), WebhooksSpec(webhooks_spec_path)

    def check_notification(notification: JsonDict) -> None:
        errors = webhooks.errors(notification)
        if errors:
            raise AnswerInvalid("; ".join(errors))

    store = AdyenStore(
        db_path,
        merchant_account=config.merchant_account,
        hmac_key=config.hmac_key,
        check_notification=check_notification,
    )
    handlers = AdyenApp(store, spec, config)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        pump = asyncio.create_task(handlers.pump())
        try:
            yield
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            store.close()

    routes = [
        Route("/v71/payments", handlers.payments, methods=["POST"]),
        Route("/v71/payments/{paymentPspReference}/captures", handlers.captures, methods=["POST"]),
        Route("/v71/payments/{paymentPspReference}/cancels", handlers.cancels, methods=["POST"]),
        Route("/v71/payments/{paymentPspReference}/refunds", handlers.refunds, methods=["POST"]),
        Route("/v71/cancels", handlers.technical_cancels, methods=["POST"]),
        Route("/_calls", handlers.calls, methods=["GET"]),
        Route("/_adyen/notifications", handlers.notifications, methods=["GET"]),
        Route("/_adyen/settle", handlers.settle, methods=["POST"]),
        Route("/_health", handlers.health, methods=["GET"]),
        Route("/_payments/{payment_id}", handlers.snapshot, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A local Adyen Checkout API v71 server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", type=Path, required=True, help="SQLite file holding the server's state")
    parser.add_argument("--spec", type=Path, default=DEFAULT_CHECKOUT_SPEC, help="Adyen's CheckoutService-v71.json")
    parser.add_argument("--webhooks-spec", type=Path, default=DEFAULT_WEBHOOKS_SPEC, help="Adyen's Webhooks-v1.json")
    # Secrets come from the environment (as the local stack sets it), so they stay out of the process list.
    parser.add_argument("--api-key", default=os.environ.get("ADYEN_API_KEY") or DEFAULT_API_KEY,
                        help="the X-API-Key requests must carry (default: $ADYEN_API_KEY)")
    parser.add_argument("--merchant-account", default=DEFAULT_MERCHANT_ACCOUNT)
    parser.add_argument("--webhook-url", default=None, help="where notifications are POSTed")
    parser.add_argument("--hmac-key", default=os.environ.get("ADYEN_HMAC_KEY") or None,
                        help="hex HMAC key signing each notification item (default: $ADYEN_HMAC_KEY)")
    parser.add_argument("--settle-after-ms", type=int, default=None, help="modifications settle after this delay")
    parser.add_argument("--slow-ms", type=int, default=AdyenConfig.slow_ms, help="tok_slow's delay")
    parser.add_argument("--webhook-retry-ms", type=int, default=AdyenConfig.webhook_retry_ms)
    args = parser.parse_args(argv)
    try:
        config = AdyenConfig(
            api_key=args.api_key,
            merchant_account=args.merchant_account,
            webhook_url=args.webhook_url,
            hmac_key=args.hmac_key,
            settle_after_ms=args.settle_after_ms,
            slow_ms=args.slow_ms,
            webhook_retry_ms=args.webhook_retry_ms,
        )
        app = create_app(args.db, config, spec_path=args.spec, webhooks_spec_path=args.webhooks_spec)
    except (ValueError, FileNotFoundError) as bad:  # SpecMissing names the path; a bad key says so
        parser.error(str(bad))
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=2)


if __name__ == "__main__":
    main()
