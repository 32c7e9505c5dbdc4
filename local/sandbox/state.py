"""The sandbox gateway's state in SQLite: payments, idempotency records, attempt counters and the call log.

WAL mode and one lock around every write transaction: the server is one process, and its state must survive a
restart (and a client that crashed mid-call), so every answer is committed before it is sent.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from local.sandbox.settlement import SETTLEMENT_SCHEMA, SETTLEMENT_TABLE, feed_csv, record_capture, record_refund
from local.server_db import JsonDict, ServerDb
from steps.gateway.port import DeclineReason, GatewayStatus, Operation

_SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
    payment_id TEXT PRIMARY KEY,
    gateway_reference TEXT NOT NULL UNIQUE,
    card_token TEXT NOT NULL,
    status TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    currency TEXT NOT NULL,
    capture_minor INTEGER NOT NULL DEFAULT 0,
    refunded_minor INTEGER NOT NULL DEFAULT 0,
    decline_reason TEXT,
    capture_mode TEXT NOT NULL,
    capture_submitted_at_ms INTEGER,
    updated_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS refunds (
    idempotency_key TEXT PRIMARY KEY,
    payment_id TEXT NOT NULL,
    refund_id TEXT,
    operation_reference TEXT NOT NULL UNIQUE,
    status TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    currency TEXT NOT NULL,
    failure_reason TEXT,
    created_at_ms INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS refunds_by_id ON refunds (payment_id, refund_id);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    http_status INTEGER NOT NULL,
    body TEXT NOT NULL
);
"""


class CaptureMode:
    """How the sandbox answers a capture of a payment, chosen by its card token."""

    SYNC = "sync"  # captured at once (Stripe)
    ASYNC_CAPTURED = "async_captured"  # capture_submitted, settles to captured (Adyen "received" + CAPTURE)
    ASYNC_FAILED = "async_failed"  # capture_submitted, settles to capture_failed (CAPTURE_FAILED webhook)
    FAILS = "fails"  # capture_failed at once


@dataclass(frozen=True)
class Answer:
    """What the server sends back: HTTP status, JSON body, whether it replayed a stored answer."""

    http_status: int
    body: JsonDict
    replayed: bool = False


@dataclass(frozen=True)
class OperationRequest:
    """One validated request; ``decline_reason`` and ``capture_mode`` come from the card token."""

    operation: Operation
    payment_id: str
    key: str
    amount_minor: int | None
    currency: str | None
    card_token: str | None = None  # authorize only; later operations use the payment's stored token
    decline_reason: DeclineReason | None = None
    capture_mode: str = CaptureMode.SYNC
    refund_id: str | None = None  # refund only: one of several refunds of the payment, named by the caller
    refunds_declined: bool = False  # the card token declines every refund


# Why a sandbox refund of a tok_refund_declined payment is declined (what Stripe names a refund's failure_reason).
REFUND_DECLINED_REASON = "declined"


def _result(
    request: OperationRequest,
    *,
    status: GatewayStatus,
    reference: str,
    operation_reference: str,
    amount_minor: int,
    currency: str,
    decline_reason: DeclineReason | None = None,
    failure_reason: str | None = None,
) -> Answer:
    body: JsonDict = {
        "operation": request.operation.value,
        "status": status.value,
        "payment_id": request.payment_id,
        "idempotency_key": request.key,
        "gateway_reference": reference,
        "operation_reference": operation_reference,
        "amount_minor": amount_minor,
        "currency": currency,
            "decline_reason": None if decline_reason is None else decline_reason.value,
    }
    if request.operation is Operation.REFUND:
        body.update(refund_id=request.refund_id, failure_reason=failure_reason)
    return Answer(200, body)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _error(http_status: int, code: str, message: str) -> Answer:
    return Answer(http_status, {"error": {"code": code, "message": message}})


class SandboxStore(ServerDb):
    def __init__(self, path: Path, *, clock_ms: Callable[[], int] = _now_ms) -> None:
        super().__init__(path, _SCHEMA + SETTLEMENT_SCHEMA)
        self._clock_ms = clock_ms
        # Set by the server's config; None settles a submitted capture only on /_sandbox/settle.
        self.settle_after_ms: int | None = None

    # --- test controls --------------------------------------------------------------------------------------

    def reset(self) -> None:
        with self._write() as db:
            for table in ("payments", "refunds", "idempotency", "attempts", "calls", SETTLEMENT_TABLE):
                db.execute(f"DELETE FROM {table}")  # noqa: S608  # fixed table names

    # --- requests -------------------------------------------------------------------------------------------

    def reference_and_token_of(self, payment_id: str) -> tuple[str, str] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT gateway_reference, card_token FROM payments WHERE payment_id = ?", (payment_id,)
            ).fetchone()
        return None if row is None else (str(row["gateway_reference"]), str(row["card_token"]))

    def log_call(self, request: OperationRequest, *, http_status: int, outcome: str) -> None:
        """Log a call that changed nothing (a fault the sandbox injected)."""
        with self._write() as db:
            self._log(db, request, http_status=http_status, outcome=outcome, replayed=False, committed=False)

    def _log(
        self,
        db: sqlite3.Connection,
        request: OperationRequest,
        *,
        http_status: int,
        outcome: str,
        replayed: bool,
        committed: bool,
    ) -> None:
        self.insert_call(db, at_ms=self._clock_ms(), operation=request.operation.value,
                         payment_id=request.payment_id, idempotency_key=request.key,
                         amount_minor=request.amount_minor, http_status=http_status, outcome=outcome,
                         replayed=replayed, committed=committed)

    def execute(self, request: OperationRequest) -> Answer:
        """One operation in one transaction: replay a stored answer, refuse a reused key, or act and store."""
        fingerprint = json.dumps(
            [request.operation.value, request.payment_id, request.amount_minor, request.currency, request.card_token,
             request.refund_id]
        )
        with self._write() as db:
            stored = db.execute("SELECT * FROM idempotency WHERE key = ?", (request.key,)).fetchone()
            if stored is not None:
                if stored["fingerprint"] != fingerprint:
                    answer = _error(
                        422, "idempotency_key_reused", f"idempotency key {request.key!r} was used with other parameters"
                    )
                else:
                    answer = Answer(int(stored["http_status"]), json.loads(stored["body"]), replayed=True)
                committed = False
            else:
                answer = self._act(db, request)
                # Only answers that changed state are stored: a refused request changed nothing, may be resent.
                committed = answer.http_status == 200
                if committed:
                    db.execute(
                        "INSERT INTO idempotency (key, fingerprint, http_status, body) VALUES (?, ?, ?, ?)",
                        (request.key, fingerprint, answer.http_status, json.dumps(answer.body)),
                    )
            outcome = answer.body.get("status") or answer.body["error"]["code"]
            self._log(
                db,
                request,
                http_status=answer.http_status,
                outcome=str(outcome),
                replayed=answer.replayed,
                committed=committed,
            )
        return answer

    def _act(self, db: sqlite3.Connection, request: OperationRequest) -> Answer:
        now_ms = self._clock_ms()
        payment_id, amount_minor = request.payment_id, request.amount_minor
        row = db.execute("SELECT * FROM payments WHERE payment_id = ?", (payment_id,)).fetchone()
        if request.operation is Operation.AUTHORIZE:
            if row is not None:
                # The same payment under another key: exactly what property 11 forbids, so say it loudly.
                return _error(409, "payment_exists", f"payment {payment_id} was authorized under another key")
            assert amount_minor is not None and request.currency is not None and request.card_token is not None
            reference = "sbx_pay_" + secrets.token_hex(10)
            decline_reason = request.decline_reason
            status = GatewayStatus.AUTHORIZED if decline_reason is None else GatewayStatus.DECLINED
            db.execute(
                "INSERT INTO payments (payment_id, gateway_reference, card_token, status, amount_minor,"
                " currency, decline_reason, capture_mode, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    payment_id,
                    reference,
                    request.card_token,
                    status.value,
                    amount_minor,
                    request.currency,
                    None if decline_reason is None else decline_reason.value,
                    request.capture_mode,
                    now_ms,
                ),
            )
            return _result(
                request,
                status=status,
                reference=reference,
                operation_reference=reference,
                amount_minor=amount_minor,
                currency=request.currency,
                decline_reason=decline_reason,
            )
        if row is None:
            return _error(404, "payment_not_found", f"no payment {payment_id}")
        row = self._settled(db, row, now_ms)
        status = GatewayStatus(row["status"])
        currency: str = row["currency"]
        if request.currency is not None and request.currency != currency:
            return _error(400, "currency_mismatch", f"payment is in {currency}, not {request.currency}")
        modification = {
            "reference": row["gateway_reference"],
            "operation_reference": "sbx_mod_" + secrets.token_hex(10),
        }
        if request.operation is Operation.CAPTURE:
            assert amount_minor is not None
            if status is not GatewayStatus.AUTHORIZED:
                return _error(409, "invalid_state", f"cannot capture a payment that is {status.value}")
            if amount_minor > row["amount_minor"]:
                return _error(
                    400, "amount_too_large", f"capture {amount_minor} exceeds the authorized {row['amount_minor']}"
                )
            new_status = {
                CaptureMode.SYNC: GatewayStatus.CAPTURED,
                CaptureMode.FAILS: GatewayStatus.CAPTURE_FAILED,
            }.get(row["capture_mode"], GatewayStatus.CAPTURE_SUBMITTED)
            db.execute(
                "UPDATE payments SET status = ?, capture_minor = ?, capture_submitted_at_ms = ?,"
                " updated_at_ms = ? WHERE payment_id = ?",
                (new_status.value, amount_minor, now_ms, now_ms, payment_id),
            )
            if new_status is GatewayStatus.CAPTURED:
                record_capture(db, payment_id=payment_id, gateway_reference=row["gateway_reference"],
                               currency=currency, amount_minor=amount_minor, at_ms=now_ms)
            return _result(request, status=new_status, amount_minor=amount_minor, currency=currency, **modification)
        if request.operation is Operation.VOID:
            if status not in (GatewayStatus.AUTHORIZED, GatewayStatus.CAPTURE_FAILED):
                return _error(409, "invalid_state", f"cannot void a payment that is {status.value}")
            db.execute(
                "UPDATE payments SET status = ?, updated_at_ms = ? WHERE payment_id = ?",
                (GatewayStatus.VOIDED.value, now_ms, payment_id),
            )
            return _result(
                request,
                status=GatewayStatus.VOIDED,
                amount_minor=row["amount_minor"],
                currency=currency,
                **modification,
            )
        assert request.operation is Operation.REFUND and amount_minor is not None
        if status not in (GatewayStatus.CAPTURED, GatewayStatus.REFUNDED):
            return _error(409, "invalid_state", f"cannot refund a payment that is {status.value}")
        refundable_minor = row["capture_minor"] - row["refunded_minor"]
        if amount_minor > refundable_minor:
            return _error(400, "amount_too_large", f"refund {amount_minor} exceeds the refundable {refundable_minor}")
        if request.refund_id is not None and db.execute(
            "SELECT 1 FROM refunds WHERE payment_id = ? AND refund_id = ?", (payment_id, request.refund_id)
        ).fetchone():
            # Only reachable under another key: the adapter derives the key from the refund id.
            return _error(409, "refund_exists", f"refund {request.refund_id} was made under another key")
        failure_reason = REFUND_DECLINED_REASON if request.refunds_declined else None
        refund_status = GatewayStatus.REFUND_FAILED if request.refunds_declined else GatewayStatus.REFUNDED
        db.execute(
            "INSERT INTO refunds (idempotency_key, payment_id, refund_id, operation_reference, status, amount_minor,"
            " currency, failure_reason, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (request.key, payment_id, request.refund_id, modification["operation_reference"], refund_status.value,
             amount_minor, currency, failure_reason, now_ms),
        )
        if refund_status is GatewayStatus.REFUNDED:  # a declined refund gave nothing back
            db.execute(
                "UPDATE payments SET status = ?, refunded_minor = refunded_minor + ?, updated_at_ms = ?"
                " WHERE payment_id = ?",
                (GatewayStatus.REFUNDED.value, amount_minor, now_ms, payment_id),
            )
            record_refund(db, payment_id=payment_id, gateway_reference=row["gateway_reference"],
                          refund_id=request.refund_id, operation_reference=modification["operation_reference"],
                          currency=currency, amount_minor=amount_minor, at_ms=now_ms)
        return _result(
            request, status=refund_status, amount_minor=amount_minor, currency=currency,
            failure_reason=failure_reason, **modification,
        )

    def refund(self, payment_id: str, refund_id: str) -> Answer:
        """One refund of a payment, by the refund id it was made with; 404 when there is none."""
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM refunds WHERE payment_id = ? AND refund_id = ?", (payment_id, refund_id)
            ).fetchone()
        if row is None:
            return _error(404, "refund_not_found", f"no refund {refund_id} of payment {payment_id}")
        return Answer(
            200,
            {
                "payment_id": row["payment_id"],
                "refund_id": row["refund_id"],
                "idempotency_key": row["idempotency_key"],
                "operation_reference": row["operation_reference"],
                "status": row["status"],
                "amount_minor": row["amount_minor"],
                "currency": row["currency"],
                "failure_reason": row["failure_reason"],
            },
        )

    # --- asynchronous capture -------------------------------------------------------------------------------

    def _settled(self, db: sqlite3.Connection, row: sqlite3.Row, now_ms: int) -> sqlite3.Row:
        """Settle a submitted capture whose configured delay has passed (lazily, when the payment is read)."""
        delay_ms = self.settle_after_ms
        if (
            row["status"] != GatewayStatus.CAPTURE_SUBMITTED.value
            or delay_ms is None
            or now_ms - int(row["capture_submitted_at_ms"]) < delay_ms
        ):
            return row
        # Booked when the delay ran out, not when someone happened to read the payment.
        self._settle_row(db, row, None, now_ms, booked_at_ms=int(row["capture_submitted_at_ms"]) + delay_ms)
        fresh: sqlite3.Row = db.execute("SELECT * FROM payments WHERE payment_id = ?", (row["payment_id"],)).fetchone()
        return fresh

    def _settle_row(self, db: sqlite3.Connection, row: sqlite3.Row, outcome: GatewayStatus | None, now_ms: int,
                    *, booked_at_ms: int | None = None) -> None:
        if outcome is None:
            failed = row["capture_mode"] == CaptureMode.ASYNC_FAILED
            outcome = GatewayStatus.CAPTURE_FAILED if failed else GatewayStatus.CAPTURED
        db.execute(
            "UPDATE payments SET status = ?, updated_at_ms = ? WHERE payment_id = ?",
            (outcome.value, now_ms, row["payment_id"]),
        )
        if outcome is GatewayStatus.CAPTURED:
            record_capture(db, payment_id=row["payment_id"], gateway_reference=row["gateway_reference"],
                           currency=row["currency"], amount_minor=row["capture_minor"],
                           at_ms=now_ms if booked_at_ms is None else booked_at_ms)

    def settle(self, payment_id: str, outcome: GatewayStatus | None) -> Answer:
        """Make a submitted capture final: ``outcome`` (captured/capture_failed) or the token's plan."""
        with self._write() as db:
            row = db.execute("SELECT * FROM payments WHERE payment_id = ?", (payment_id,)).fetchone()
            if row is None:
                return _error(404, "payment_not_found", f"no payment {payment_id}")
            if row["status"] != GatewayStatus.CAPTURE_SUBMITTED.value:
                return _error(409, "invalid_state", f"payment is {row['status']}, not capture_submitted")
            self._settle_row(db, row, outcome, self._clock_ms())
        return self.snapshot(payment_id)

    # --- settlement feed ------------------------------------------------------------------------------------

    def settlement_feed(self, day: date) -> bytes:
        """The UTC day's settlement feed (local/sandbox/settlement.py), after settling the submitted captures whose
        delay has run out: a capture that is final must be in the feed whether or not anyone looked it up."""
        with self._write() as db:
            now_ms = self._clock_ms()
            for row in db.execute("SELECT * FROM payments WHERE status = ?",
                                  (GatewayStatus.CAPTURE_SUBMITTED.value,)).fetchall():
                self._settled(db, row, now_ms)
            return feed_csv(db, day)

    def snapshot(self, payment_id: str) -> Answer:
        with self._write() as db:
            row = db.execute("SELECT * FROM payments WHERE payment_id = ?", (payment_id,)).fetchone()
            if row is None:
                return _error(404, "payment_not_found", f"no payment {payment_id}")
            row = self._settled(db, row, self._clock_ms())
        status = GatewayStatus(row["status"])
        captured = status in (GatewayStatus.CAPTURED, GatewayStatus.REFUNDED)
        return Answer(
            200,
            {
                "payment_id": row["payment_id"],
                "gateway_reference": row["gateway_reference"],
                "status": status.value,
                "amount_minor": row["amount_minor"],
                "currency": row["currency"],
                "captured_minor": row["capture_minor"] if captured else 0,
                "refunded_minor": row["refunded_minor"],
                "decline_reason": row["decline_reason"],
            },
        )
