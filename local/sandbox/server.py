"""The sandbox payment gateway: a real HTTP server with its own SQLite state, for local runs and tests.

Run: ``python -m local.sandbox.server --host 127.0.0.1 --port P --db PATH [--latency-ms N]
[--settle-after-ms N]``

It behaves like Stripe/Adyen where the saga cares: manual-capture authorizations, idempotency keys (a repeated
key returns the first answer, marked ``replayed``; the same key with other parameters is a 422), asynchronous
capture, and lookups. Its state lives in SQLite at PATH, so it survives a restart of the server and of its clients.

API (JSON; every POST under /v1 needs an ``Idempotency-Key`` header):

| request                                        | body / answer                                                  |
|------------------------------------------------|----------------------------------------------------------------|
| ``POST /v1/payments``                          | ``{payment_id, amount_minor, currency, card_token}``           |
| ``POST /v1/payments/{payment_id}/capture``     | ``{gateway_reference, amount_minor, currency}`` (partial ok)   |
| ``POST /v1/payments/{payment_id}/void``        | ``{gateway_reference}``                                        |
| ``POST /v1/payments/{payment_id}/refund``      | ``{gateway_reference, amount_minor, currency[, refund_id]}``:  |
|                                                | several refunds, each under its own key, up to the captured    |
|                                                | amount (400 ``amount_too_large`` beyond); ``refund_id`` (our   |
|                                                | refund's decimal id) names one, its answer has ``refund_id``,  |
|                                                | ``failure_reason`` and status ``refunded`` / ``refund_failed`` |
| ``GET  /v1/payments/{payment_id}``             | lookup: the payment's state, 404 if never authorized           |
| ``GET  /v1/payments/{payment_id}/refunds/{id}``| one refund by its ``refund_id``: ``{payment_id, refund_id,     |
|                                                | idempotency_key, operation_reference, status, amount_minor,    |
|                                                | currency, failure_reason}``, 404 if never made                 |
| ``GET  /_sandbox/calls?payment_id=``           | the call log (each valid request, with ``committed``)          |
| ``POST /_sandbox/reset``                       | forget everything, restore the startup config                  |
| ``POST /_sandbox/config``                      | any of ``latency_ms, slow_ms, settle_after_ms, withhold_max_ms`` |
| ``POST /_sandbox/settle?payment_id=&outcome=`` | make a submitted capture ``captured`` / ``capture_failed``     |
| ``GET  /_sandbox/settlements/{YYYY-MM-DD}``    | the UTC day's settlement feed, ``text/csv`` (format: the       |
|                                                | docstring of ledger/reconciliation/sandbox_feed.py)            |

Test card tokens (``SANDBOX_TOKENS``). "First attempt" means the first request under one idempotency key, so
a fault applies once to each operation of the payment (authorize, then capture, void, refund) and a retry with
the same key gets through. Attempts are counted in SQLite, so a restart does not re-arm a fault.

| token                        | behaviour                                                                          |
|------------------------------|------------------------------------------------------------------------------------|
| ``tok_approve``              | authorized; capture is final at once (Stripe-like)                                 |
| ``tok_decline``              | declined, ``card_declined``                                                        |
| ``tok_insufficient_funds``   | declined, ``insufficient_funds``                                                   |
| ``tok_fraudulent``           | declined, ``fraudulent``                                                           |
| ``tok_timeout_before_send``  | first attempt NOT processed, no answer until the client gives up (read timeout)    |
| ``tok_timeout_after_commit`` | first attempt IS committed, answer withheld until the client gives up; lookup      |
|                              | finds the effect, a retry replays it                                               |
| ``tok_5xx_then_success``     | first attempt answers 503 with nothing committed                                   |
| ``tok_slow``                 | answers after ``slow_ms`` (default 200 ms, below the client timeout)               |
| ``tok_async_capture``        | capture answers ``capture_submitted``; /_sandbox/settle or ``settle_after_ms``     |
|                              | then makes it ``captured`` (Adyen-like)                                            |
| ``tok_async_capture_fails``  | as above, but it settles to ``capture_failed``                                     |
| ``tok_capture_fails``        | capture answers ``capture_failed`` at once                                         |
| ``tok_refund_declined``      | authorized and captured as ``tok_approve``; every refund of it is declined:        |
|                              | ``refund_failed``, ``failure_reason`` ``declined``, nothing given back             |

Call log rows: ``seq, at_ms, operation, payment_id, idempotency_key, amount_minor, http_status, outcome (the status
answered, an error code, or dropped_before_processing / unavailable / answer_withheld), replayed, committed``.
"One authorization" means one ``authorize`` row with ``committed`` true.

A withheld answer is held until the client disconnects (its read timeout), at most ``withhold_max_ms``, then a
504 is sent to a client still waiting; so tests run as fast as their client timeout.
"""

from __future__ import annotations

import argparse
import asyncio
import enum
import logging
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from local.sandbox.settlement import parse_day
from local.sandbox.state import Answer, CaptureMode, OperationRequest, SandboxStore
from local.withheld import hold_until_client_leaves
from steps.gateway.port import DeclineReason, GatewayStatus, Operation

_log = logging.getLogger(__name__)
MAX_DELAY_MS = 60_000  # bound on every configurable delay
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_REFUND_ID = re.compile(r"^[0-9]{1,19}$")  # our refunds' Snowflake ids, as decimal strings


class Fault(enum.Enum):
    NONE = "none"
    DROP_FIRST = "drop_first"  # timeout before send: nothing processed
    WITHHOLD_FIRST = "withhold_first"  # timeout after commit: processed, answer lost
    UNAVAILABLE_FIRST = "unavailable_first"  # 503, nothing processed
    SLOW = "slow"


@dataclass(frozen=True)
class TokenBehaviour:
    decline_reason: DeclineReason | None = None
    capture_mode: str = CaptureMode.SYNC
    fault: Fault = Fault.NONE
    refunds_declined: bool = False  # every refund of the payment is declined (refund_failed)


SANDBOX_TOKENS: dict[str, TokenBehaviour] = {
    "tok_approve": TokenBehaviour(),
    "tok_decline": TokenBehaviour(decline_reason=DeclineReason.CARD_DECLINED),
    "tok_insufficient_funds": TokenBehaviour(decline_reason=DeclineReason.INSUFFICIENT_FUNDS),
    "tok_fraudulent": TokenBehaviour(decline_reason=DeclineReason.FRAUDULENT),
    "tok_timeout_before_send": TokenBehaviour(fault=Fault.DROP_FIRST),
    "tok_timeout_after_commit": TokenBehaviour(fault=Fault.WITHHOLD_FIRST),
    "tok_5xx_then_success": TokenBehaviour(fault=Fault.UNAVAILABLE_FIRST),
    "tok_slow": TokenBehaviour(fault=Fault.SLOW),
    "tok_async_capture": TokenBehaviour(capture_mode=CaptureMode.ASYNC_CAPTURED),
    "tok_async_capture_fails": TokenBehaviour(capture_mode=CaptureMode.ASYNC_FAILED),
    "tok_capture_fails": TokenBehaviour(capture_mode=CaptureMode.FAILS),
    "tok_refund_declined": TokenBehaviour(refunds_declined=True),
}


@dataclass(frozen=True)
class SandboxConfig:
    latency_ms: int = 0  # added to every /v1 request
    slow_ms: int = 200  # tok_slow's delay
    settle_after_ms: int | None = None  # auto-settle of submitted captures; None: only /_sandbox/settle
    withhold_max_ms: int = 30_000  # longest a withheld answer waits for the client to give up


class BadRequest(Exception):
    pass


def _json(answer: Answer) -> JSONResponse:
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else None
    return JSONResponse(answer.body, status_code=answer.http_status, headers=headers)


def _error(http_status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=http_status)


def _amount(body: dict[str, Any]) -> int:
    amount = body.get("amount_minor")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise BadRequest("amount_minor must be a positive integer")
    return amount


def _currency(body: dict[str, Any]) -> str:
    currency = body.get("currency")
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise BadRequest("currency must be an ISO 4217 code")
    return currency


def _refund_id(body: dict[str, Any]) -> str | None:
    refund_id = body.get("refund_id")
    if refund_id is not None and (not isinstance(refund_id, str) or not _REFUND_ID.match(refund_id)):
        raise BadRequest("refund_id must be a decimal string of 1 to 19 digits")
    return refund_id


def _delay_ms(value: Any, name: str, *, nullable: bool = False) -> int | None:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DELAY_MS:
        raise BadRequest(f"{name} must be an integer from 0 to {MAX_DELAY_MS}")
    return value


class SandboxApp:
    def __init__(self, store: SandboxStore, config: SandboxConfig) -> None:
        self.store = store
        self.startup_config = config
        self.config = config
        store.settle_after_ms = config.settle_after_ms

    def set_config(self, config: SandboxConfig) -> None:
        self.config = config
        self.store.settle_after_ms = config.settle_after_ms

    async def _body(self, request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError as bad:
            raise BadRequest("body must be a JSON object") from bad
        if not isinstance(body, dict):
            raise BadRequest("body must be a JSON object")
        return body

    async def _operate(self, request: Request, operation: Operation) -> JSONResponse:
        await asyncio.sleep(self.config.latency_ms / 1000)
        key = request.headers.get("idempotency-key")
        if not key:
            return _error(400, "missing_idempotency_key", "the Idempotency-Key header is required")
        try:
            body = await self._body(request)
            if operation is Operation.AUTHORIZE:
                payment_id = body.get("payment_id")
                if not isinstance(payment_id, str) or not payment_id:
                    raise BadRequest("payment_id must be a non-empty string")
                card_token = body.get("card_token")
                if card_token not in SANDBOX_TOKENS:
                    raise BadRequest(f"card_token must be one of {sorted(SANDBOX_TOKENS)}")
                assert isinstance(card_token, str)
            else:
                payment_id = request.path_params["payment_id"]
                known = self.store.reference_and_token_of(payment_id)
                if known is None:
                    return _error(404, "payment_not_found", f"no payment {payment_id}")
                reference, card_token = known
                if body.get("gateway_reference") != reference:
                    # Stripe/Adyen address a payment by their own reference: a wrong one is our bug.
                    return _error(400, "reference_mismatch", f"gateway_reference is not {payment_id}'s reference")
            amount_minor = None if operation is Operation.VOID else _amount(body)
            currency = None if operation is Operation.VOID else _currency(body)
            refund_id = _refund_id(body) if operation is Operation.REFUND else None
        except BadRequest as bad:
            return _error(400, "invalid_request", str(bad))
        behaviour = SANDBOX_TOKENS[card_token]
        operation_request = OperationRequest(
            operation=operation,
            payment_id=payment_id,
            key=key,
            amount_minor=amount_minor,
            currency=currency,
            card_token=card_token if operation is Operation.AUTHORIZE else None,
            decline_reason=behaviour.decline_reason,
            capture_mode=behaviour.capture_mode,
            refund_id=refund_id,
            refunds_declined=behaviour.refunds_declined,
        )
        first = self.store.count_attempt(key) == 1
        if first and behaviour.fault is Fault.DROP_FIRST:
            self.store.log_call(operation_request, http_status=504, outcome="dropped_before_processing")
            await hold_until_client_leaves(request, self.config.withhold_max_ms)
            return _error(504, "timeout", "the request was not processed")
        if first and behaviour.fault is Fault.UNAVAILABLE_FIRST:
            self.store.log_call(operation_request, http_status=503, outcome="unavailable")
            return _error(503, "unavailable", "the sandbox is briefly unavailable; nothing was processed")
        if behaviour.fault is Fault.SLOW:
            await asyncio.sleep(self.config.slow_ms / 1000)
        answer = self.store.execute(operation_request)
        if first and behaviour.fault is Fault.WITHHOLD_FIRST:
            self.store.log_call(operation_request, http_status=504, outcome="answer_withheld")
            await hold_until_client_leaves(request, self.config.withhold_max_ms)
            return _error(504, "timeout", "the answer was withheld")
        return _json(answer)

    async def authorize(self, request: Request) -> JSONResponse:
        return await self._operate(request, Operation.AUTHORIZE)

    async def capture(self, request: Request) -> JSONResponse:
        return await self._operate(request, Operation.CAPTURE)

    async def void(self, request: Request) -> JSONResponse:
        return await self._operate(request, Operation.VOID)

    async def refund(self, request: Request) -> JSONResponse:
        return await self._operate(request, Operation.REFUND)

    async def lookup(self, request: Request) -> JSONResponse:
        await asyncio.sleep(self.config.latency_ms / 1000)
        return _json(self.store.snapshot(request.path_params["payment_id"]))

    async def refund_of(self, request: Request) -> JSONResponse:
        await asyncio.sleep(self.config.latency_ms / 1000)
        return _json(self.store.refund(request.path_params["payment_id"], request.path_params["refund_id"]))

    async def calls(self, request: Request) -> JSONResponse:
        return JSONResponse({"calls": self.store.calls(request.query_params.get("payment_id"))})

    async def reset(self, request: Request) -> JSONResponse:
        self.store.reset()
        self.set_config(self.startup_config)
        return JSONResponse({"reset": True, "config": asdict(self.config)})

    async def configure(self, request: Request) -> JSONResponse:
        try:
            body = await self._body(request)
            names = {field.name for field in fields(SandboxConfig)}
            unknown = set(body) - names
            if unknown:
                raise BadRequest(f"unknown settings {sorted(unknown)}; known: {sorted(names)}")
            current = asdict(self.config)
            for name, value in body.items():
                current[name] = _delay_ms(value, name, nullable=name == "settle_after_ms")
        except BadRequest as bad:
            return _error(400, "invalid_request", str(bad))
        self.set_config(SandboxConfig(**current))
        return JSONResponse({"config": asdict(self.config)})

    async def settle(self, request: Request) -> JSONResponse:
        payment_id = request.query_params.get("payment_id")
        raw_outcome = request.query_params.get("outcome")
        if not payment_id:
            return _error(400, "invalid_request", "payment_id is required")
        allowed = {GatewayStatus.CAPTURED.value, GatewayStatus.CAPTURE_FAILED.value}
        if raw_outcome is not None and raw_outcome not in allowed:
            return _error(400, "invalid_request", f"outcome must be one of {sorted(allowed)}")
        outcome = None if raw_outcome is None else GatewayStatus(raw_outcome)
        return _json(self.store.settle(payment_id, outcome))

    async def settlements(self, request: Request) -> Response:
        raw_day = request.path_params["date"]
        try:
            day = parse_day(raw_day)
        except ValueError:
            return _error(400, "invalid_request", f"date must be a UTC day as YYYY-MM-DD, not {raw_day!r}")
        return Response(self.store.settlement_feed(day), media_type="text/csv; charset=utf-8")


def create_app(db_path: Path, config: SandboxConfig | None = None) -> Starlette:
    handlers = SandboxApp(SandboxStore(db_path), config or SandboxConfig())
    routes = [
        Route("/v1/payments", handlers.authorize, methods=["POST"]),
        Route("/v1/payments/{payment_id}/capture", handlers.capture, methods=["POST"]),
        Route("/v1/payments/{payment_id}/void", handlers.void, methods=["POST"]),
        Route("/v1/payments/{payment_id}/refund", handlers.refund, methods=["POST"]),
        Route("/v1/payments/{payment_id}", handlers.lookup, methods=["GET"]),
        Route("/v1/payments/{payment_id}/refunds/{refund_id}", handlers.refund_of, methods=["GET"]),
        Route("/_sandbox/calls", handlers.calls, methods=["GET"]),
        Route("/_sandbox/reset", handlers.reset, methods=["POST"]),
        Route("/_sandbox/config", handlers.configure, methods=["POST"]),
        Route("/_sandbox/settle", handlers.settle, methods=["POST"]),
        Route("/_sandbox/settlements/{date}", handlers.settlements, methods=["GET"]),
    ]
    app = Starlette(routes=routes, on_shutdown=[handlers.store.close])
    return app


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The paysaga sandbox payment gateway.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", type=Path, required=True, help="SQLite file holding the sandbox's state")
    parser.add_argument("--latency-ms", type=int, default=0, help="added to every /v1 request")
    parser.add_argument("--settle-after-ms", type=int, default=None, help="auto-settle submitted captures")
    args = parser.parse_args(argv)
    config = SandboxConfig(latency_ms=args.latency_ms, settle_after_ms=args.settle_after_ms)
    uvicorn.run(
        create_app(args.db, config),
        host=args.host,
        port=args.port,
        log_level="warning",
        timeout_graceful_shutdown=2,
    )


if __name__ == "__main__":
    main()
