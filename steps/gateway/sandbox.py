"""The Gateway port over the sandbox gateway's HTTP API (local/sandbox/server.py), with httpx.

Every network wait is bounded: ``connect_timeout_ms`` to open a connection, ``timeout_ms`` for each write and read.
Failures map to what is safe for the caller (see steps/gateway/port.py):

| what happened                                          | raised                  |
|--------------------------------------------------------|-------------------------|
| connect error / connect timeout / pool timeout         | GatewayUnreachable      |
| 503 or 429 (the gateway promises nothing committed)    | GatewayUnreachable      |
| read or write timeout, connection dropped mid-answer   | GatewayOutcomeUnknown   |
| any other 5xx, or a 2xx whose body is not the contract | GatewayOutcomeUnknown   |
| other 4xx                                              | GatewayRejected         |

No retries here: the workflow's Retry decides, with the same idempotency key.
"""

from __future__ import annotations

from typing import Any

import httpx

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

# What a refund made with a refund id may answer; anything else is not the contract.
_REFUND_STATUSES = frozenset({GatewayStatus.REFUNDED, GatewayStatus.REFUND_PENDING, GatewayStatus.REFUND_FAILED})

DEFAULT_TIMEOUT_MS = 2_000
DEFAULT_CONNECT_TIMEOUT_MS = 500
POOL_SIZE = 20  # bounded connection pool per adapter


class SandboxGateway:
    name = "sandbox"
    lookup_is_complete = True  # answers from its own state

    def __init__(
        self,
        *,
        base_url: str,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        connect_timeout_ms: int = DEFAULT_CONNECT_TIMEOUT_MS,
    ) -> None:
        if timeout_ms <= 0 or connect_timeout_ms <= 0:
            raise ValueError("timeouts must be positive")
        timeout = httpx.Timeout(timeout_ms / 1000, connect=connect_timeout_ms / 1000, pool=connect_timeout_ms / 1000)
        self._client = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            limits=httpx.Limits(max_connections=POOL_SIZE, max_keepalive_connections=POOL_SIZE),
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> SandboxGateway:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # --- the port ---------------------------------------------------------------------------------------------------

    def authorize(self, *, payment_id: str, amount_minor: int, currency: str, card_token: str) -> GatewayResult:
        check_money(amount_minor, currency)
        body = {"payment_id": payment_id, "amount_minor": amount_minor, "currency": currency, "card_token": card_token}
        return self._operate(Operation.AUTHORIZE, payment_id, "/v1/payments", body)

    def capture(self, *, payment_id: str, gateway_reference: str, amount_minor: int, currency: str) -> GatewayResult:
        check_money(amount_minor, currency)
        body = {"gateway_reference": gateway_reference, "amount_minor": amount_minor, "currency": currency}
        return self._operate(Operation.CAPTURE, payment_id, f"/v1/payments/{payment_id}/capture", body)

    def cancel(self, *, payment_id: str, gateway_reference: str) -> GatewayResult:
        body = {"gateway_reference": gateway_reference}
        return self._operate(Operation.VOID, payment_id, f"/v1/payments/{payment_id}/void", body)

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
        body: dict[str, Any] = {"gateway_reference": gateway_reference, "amount_minor": amount_minor,
                                "currency": currency}
        if refund_id is not None:
            body["refund_id"] = refund_id
        result = self._operate(
            Operation.REFUND, payment_id, f"/v1/payments/{payment_id}/refund", body, refund_id=refund_id
        )
        if refund_id is not None and result.status not in _REFUND_STATUSES:
            raise GatewayOutcomeUnknown(
                f"refund answered status {result.status.value}", operation=Operation.REFUND, payment_id=payment_id
            )
        return result

    def lookup_refund(
        self, *, payment_id: str, gateway_reference: str, refund_id: str, operation_reference: str | None = None
    ) -> RefundSnapshot | None:
        del gateway_reference, operation_reference  # the sandbox keeps every refund by payment and refund id
        idempotency_key(Operation.REFUND, payment_id, refund_id)  # validates both ids as the refund does
        path = f"/v1/payments/{payment_id}/refunds/{refund_id}"
        response = self._send(None, payment_id, "GET", path, body=None, key=None)
        if response.status_code == 404:
            return None
        body = self._checked(None, payment_id, response)
        try:
            status = GatewayStatus(body["status"])
            if status not in _REFUND_STATUSES or (body["payment_id"], body["refund_id"]) != (payment_id, refund_id):
                raise ValueError(f"not refund {refund_id} of {payment_id} in a refund's status")
            reason = body.get("failure_reason")
            return RefundSnapshot(
                refund_id=refund_id,
                operation_reference=_str(body, "operation_reference"),
                status=status,
                amount_minor=_int(body, "amount_minor"),
                currency=_str(body, "currency"),
                failure_reason=reason if isinstance(reason, str) else None,
            )
        except (KeyError, ValueError, TypeError) as bad:
            raise GatewayOutcomeUnknown(f"lookup_refund answered an unexpected body: {bad}",
                                        payment_id=payment_id) from bad

    def lookup(self, *, payment_id: str, gateway_reference: str | None = None) -> PaymentSnapshot | None:
        del gateway_reference  # the sandbox finds every payment by its id
        idempotency_key(Operation.AUTHORIZE, payment_id)  # validates the id as every other call does
        response = self._send(None, payment_id, "GET", f"/v1/payments/{payment_id}", body=None, key=None)
        if response.status_code == 404:
            return None
        body = self._checked(None, payment_id, response)
        try:
            snapshot = PaymentSnapshot(
                payment_id=_str(body, "payment_id"),
                gateway_reference=_str(body, "gateway_reference"),
                status=GatewayStatus(body["status"]),
                amount_minor=_int(body, "amount_minor"),
                currency=_str(body, "currency"),
                captured_minor=_int(body, "captured_minor"),
                refunded_minor=_int(body, "refunded_minor"),
                decline_reason=None if body.get("decline_reason") is None else DeclineReason(body["decline_reason"]),
            )
        except (KeyError, ValueError, TypeError) as bad:
            raise GatewayOutcomeUnknown(f"lookup answered an unexpected body: {bad}", payment_id=payment_id) from bad
        if snapshot.payment_id != payment_id:
            raise GatewayOutcomeUnknown("lookup answered for another payment", payment_id=payment_id)
        return snapshot

    # --- HTTP -------------------------------------------------------------------------------------------------------

    def _operate(
        self, operation: Operation, payment_id: str, path: str, body: dict[str, Any], *, refund_id: str | None = None
    ) -> GatewayResult:
        key = idempotency_key(operation, payment_id, refund_id)
        response = self._send(operation, payment_id, "POST", path, body=body, key=key)
        answer = self._checked(operation, payment_id, response)
        try:
            result = GatewayResult(
                operation=Operation(answer["operation"]),
                status=GatewayStatus(answer["status"]),
                payment_id=_str(answer, "payment_id"),
                idempotency_key=_str(answer, "idempotency_key"),
                gateway_reference=_str(answer, "gateway_reference"),
                operation_reference=_str(answer, "operation_reference"),
                amount_minor=_int(answer, "amount_minor"),
                currency=_str(answer, "currency"),
                decline_reason=None
                if answer.get("decline_reason") is None
                else DeclineReason(answer["decline_reason"]),
                decline_detail=answer.get("failure_reason") or answer.get("decline_reason"),
                replayed=response.headers.get("idempotent-replayed") == "true",
            )
        except (KeyError, ValueError, TypeError) as bad:
            raise GatewayOutcomeUnknown(
                f"{operation.value} answered an unexpected body: {bad}", operation=operation, payment_id=payment_id
            ) from bad
        if (result.operation, result.payment_id, result.idempotency_key) != (operation, payment_id, key):
            raise GatewayOutcomeUnknown(
                f"{operation.value} answered for another request", operation=operation, payment_id=payment_id
            )
        return result

    def _send(
        self,
        operation: Operation | None,
        payment_id: str,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None,
        key: str | None,
    ) -> httpx.Response:
        what = operation.value if operation is not None else "lookup"
        headers = {"Idempotency-Key": key} if key is not None else None
        try:
            return self._client.request(method, path, json=body, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as down:
            # Nothing left this process: the gateway cannot have acted.
            raise GatewayUnreachable(
                f"{what}: sandbox gateway unreachable ({type(down).__name__})",
                operation=operation,
                payment_id=payment_id,
            ) from down
        except httpx.TransportError as lost:
            # Read/write timeout, connection dropped: the request may have arrived and been processed.
            raise GatewayOutcomeUnknown(
                f"{what}: no answer from the sandbox gateway ({type(lost).__name__})",
                operation=operation,
                payment_id=payment_id,
            ) from lost

    @staticmethod
    def _checked(operation: Operation | None, payment_id: str, response: httpx.Response) -> dict[str, Any]:
        what = operation.value if operation is not None else "lookup"
        status_code = response.status_code
        if status_code in (429, 503):
            raise GatewayUnreachable(
                f"{what}: sandbox gateway answered {status_code}, nothing processed",
                operation=operation,
                payment_id=payment_id,
            )
        if status_code >= 500:
            raise GatewayOutcomeUnknown(
                f"{what}: sandbox gateway answered {status_code}", operation=operation, payment_id=payment_id
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        if 400 <= status_code < 500:
            error = body.get("error") if isinstance(body, dict) else None
            code = str(error.get("code", "unknown")) if isinstance(error, dict) else "unknown"
            message = str(error.get("message", "")) if isinstance(error, dict) else response.text[:200]
            raise GatewayRejected(
                f"{what}: sandbox gateway rejected the request ({status_code} {code}): {message}",
                status_code=status_code,
                code=code,
                operation=operation,
                payment_id=payment_id,
            )
        if status_code != 200 or not isinstance(body, dict):
            raise GatewayOutcomeUnknown(
                f"{what}: unexpected answer {status_code}", operation=operation, payment_id=payment_id
            )
        return body


def _str(body: dict[str, Any], name: str) -> str:
    value = body[name]
    if not isinstance(value, str):
        raise TypeError(f"{name} is not a string")
    return value


def _int(body: dict[str, Any], name: str) -> int:
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} is not an integer")
    return value
