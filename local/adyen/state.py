"""The local Adyen server's state in SQLite: payments, modifications awaiting their outcome, idempotency records,
attempt counters, the call log and the webhook outbox.

As in the sandbox (local/sandbox/state.py): WAL mode, one lock around every write transaction, every answer committed
before it is sent, so the state survives a restart of the server and of its clients. A webhook is written to the
outbox in the transaction that decided it, so a crash never loses one; delivery happens later (server.py).

Adyen's semantics kept here:

- /payments decides at once (Authorised or Refused) and always queues an AUTHORISATION webhook;
- a modification (capture, cancel, technical cancel, refund) is only acknowledged ("received"); its outcome is
  decided when it settles (``settle_due`` after the configured delay, or ``settle_payment`` on request) and told by
  webhook: CAPTURE / CAPTURE_FAILED, CANCELLATION, TECHNICAL_CANCEL (cancel by merchant reference), REFUND /
  REFUND_FAILED. A modification the payment's state does not allow fails then, by webhook (success "false"), as at
  Adyen, not in the answer.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from local.adyen.notifications import notification_item, sign_item, unsigned_notification
from local.adyen.tokens import behaviour_of
from local.sandbox.server import TokenBehaviour
from local.sandbox.state import CaptureMode
from local.server_db import CALL_LOG_LIMIT, JsonDict, ServerDb
from steps.gateway.port import DeclineReason, Operation

OUTBOX_BATCH = 50  # webhooks one delivery round takes at most
_PSP_ALPHABET = string.ascii_uppercase + string.digits

# How Adyen words each decline (refusalReason, refusalReasonCode): Adyen's refusal reason table.
REFUSALS: dict[DeclineReason, tuple[str, str]] = {
    DeclineReason.CARD_DECLINED: ("Refused", "2"),
    DeclineReason.EXPIRED_CARD: ("Expired Card", "6"),
    DeclineReason.INSUFFICIENT_FUNDS: ("Not enough balance", "12"),
    DeclineReason.FRAUDULENT: ("FRAUD", "20"),
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
    psp_reference TEXT PRIMARY KEY,
    merchant_reference TEXT NOT NULL,
    card_token TEXT NOT NULL,
    status TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    currency TEXT NOT NULL,
    captured_minor INTEGER NOT NULL DEFAULT 0,
    refunded_minor INTEGER NOT NULL DEFAULT 0,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS payments_by_reference ON payments (merchant_reference, created_at_ms);
CREATE TABLE IF NOT EXISTS modifications (
    psp_reference TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    payment_psp TEXT,
    merchant_reference TEXT NOT NULL,
    reference TEXT,
    amount_minor INTEGER,
    currency TEXT,
    created_at_ms INTEGER NOT NULL,
    settled_at_ms INTEGER
);
CREATE INDEX IF NOT EXISTS modifications_pending ON modifications (settled_at_ms, created_at_ms);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    http_status INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    payment_id TEXT NOT NULL,
    event_code TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at_ms INTEGER NOT NULL,
    delivered_at_ms INTEGER,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (delivered_at_ms, next_attempt_at_ms);
"""


class Kind:
    """What a request does; the modifications' kinds are stored as these."""

    PAYMENT = "payment"
    CAPTURE = "capture"
    CANCEL = "cancel"
    TECHNICAL_CANCEL = "technical_cancel"  # POST /cancels: by the payment's merchant reference
    REFUND = "refund"


OPERATION_OF: dict[str, Operation] = {
    Kind.PAYMENT: Operation.AUTHORIZE,
    Kind.CAPTURE: Operation.CAPTURE,
    Kind.CANCEL: Operation.VOID,
    Kind.TECHNICAL_CANCEL: Operation.VOID,
    Kind.REFUND: Operation.REFUND,
}
# The call log's outcome of an accepted request, in the port's words (as the sandbox's log has them).
_ACCEPTED_OUTCOME = {
    Kind.CAPTURE: "capture_submitted",
    Kind.CANCEL: "voided",
    Kind.TECHNICAL_CANCEL: "voided",
    Kind.REFUND: "refunded",
}


class Status:
    """A payment's state in this server."""

    AUTHORISED = "authorised"
    REFUSED = "refused"
    CAPTURED = "captured"
    CAPTURE_FAILED = "capture_failed"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


@dataclass(frozen=True)
class Answer:
    http_status: int
    body: JsonDict
    replayed: bool = False


@dataclass(frozen=True)
class ApiCall:
    """One request that passed validation, authentication and the merchant account check."""

    kind: str
    payment_id: str  # the payment's merchantReference (the saga's payment id)
    key: str | None  # Idempotency-Key
    fingerprint: str
    merchant_account: str
    amount_minor: int | None = None
    currency: str | None = None
    reference: str | None = None  # the modification's own reference, when the request gave one
    payment_psp: str | None = None  # the payment a modification is addressed to (None for /payments, /cancels)
    card_token: str | None = None  # /payments
    behaviour: TokenBehaviour | None = None  # /payments: the card token's behaviour

    @property
    def operation(self) -> Operation:
        return OPERATION_OF[self.kind]


@dataclass(frozen=True)
class Outgoing:
    """A webhook waiting in the outbox."""

    id: int
    payment_id: str
    event_code: str
    body: JsonDict
    attempts: int


def fingerprint(method: str, path: str, body: JsonDict) -> str:
    """What "the same request" means for an idempotency key: method, path and body (key order ignored)."""
    canonical = json.dumps([method.upper(), path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def new_psp_reference() -> str:
    """16 characters, upper-case letters and digits, as Adyen's pspReferences."""
    return "".join(secrets.choice(_PSP_ALPHABET) for _ in range(16))


def service_error(http_status: int, error_code: str, message: str, error_type: str) -> Answer:
    """Adyen's ServiceError answer."""
    return Answer(
        http_status, {"status": http_status, "errorCode": error_code, "message": message, "errorType": error_type}
    )


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class AdyenStore(ServerDb):
    def __init__(
        self,
        path: Path,
        *,
        merchant_account: str,
        hmac_key: str | None,
        check_notification: Callable[[JsonDict], None],
        clock_ms: Callable[[], int] = _now_ms,
    ) -> None:
        super().__init__(path, _SCHEMA)
        self._clock_ms = clock_ms
        self._merchant_account = merchant_account
        self._hmac_key = hmac_key
        self._check_notification = check_notification  # raises on a webhook Adyen's spec would not allow

    # --- reads ----------------------------------------------------------------------------------------------------

    def notifications(self, payment_id: str | None) -> list[JsonDict]:
        query = "SELECT * FROM outbox"
        args: tuple[str, ...] = ()
        if payment_id is not None:
            query, args = query + " WHERE payment_id = ?", (payment_id,)
        with self._lock:
            rows = self._db.execute(query + f" ORDER BY id LIMIT {CALL_LOG_LIMIT}", args).fetchall()
        return [
            {
                "id": row["id"],
                "payment_id": row["payment_id"],
                "event_code": row["event_code"],
                "attempts": row["attempts"],
                "delivered": row["delivered_at_ms"] is not None,
                "last_error": row["last_error"],
                "notification": json.loads(row["body"]),
            }
            for row in rows
        ]

    def payment(self, psp_reference: str) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(
                "SELECT * FROM payments WHERE psp_reference = ?", (psp_reference,)
            ).fetchone()
        return row

    def capture_pending(self, psp_reference: str) -> bool:
        """A capture of this payment was received and has not settled yet."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM modifications WHERE payment_psp = ? AND kind = ? AND settled_at_ms IS NULL",
                (psp_reference, Kind.CAPTURE),
            ).fetchone()
        return row is not None

    def latest_payment(self, merchant_reference: str) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(
                "SELECT * FROM payments WHERE merchant_reference = ? ORDER BY created_at_ms DESC, rowid DESC LIMIT 1",
                (merchant_reference,),
            ).fetchone()
        return row

    # --- requests -------------------------------------------------------------------------------------------------

    def log_call(self, call: ApiCall, *, http_status: int, outcome: str) -> None:
        """Log a call that changed nothing (an injected fault, an answer that failed its own validation)."""
        with self._write() as db:
            self._log(db, call, http_status=http_status, outcome=outcome, replayed=False, committed=False)

    def _log(
        self, db: sqlite3.Connection, call: ApiCall, *, http_status: int, outcome: str, replayed: bool, committed: bool
    ) -> None:
        self.insert_call(db, at_ms=self._clock_ms(), operation=call.operation.value, payment_id=call.payment_id,
                         idempotency_key=call.key or "", amount_minor=call.amount_minor, http_status=http_status,
                         outcome=outcome, replayed=replayed, committed=committed)

    def execute(self, call: ApiCall, check_answer: Callable[[Answer], None]) -> Answer:
        """One request in one transaction: replay the stored answer of its key, refuse the key reused with another
        request, or act and store the answer. ``check_answer`` raises to roll everything back (a server bug)."""
        with self._write() as db:
            stored = None
            if call.key is not None:
                stored = db.execute("SELECT * FROM idempotency WHERE key = ?", (call.key,)).fetchone()
            if stored is not None and stored["fingerprint"] != call.fingerprint:
                answer = service_error(
                    422, "704", f"Idempotency-Key {call.key!r} was already used with another request", "validation"
                )
            elif stored is not None:
                answer = Answer(int(stored["http_status"]), json.loads(stored["body"]), replayed=True)
            else:
                answer = self._act(db, call)
            check_answer(answer)
            committed = stored is None and 200 <= answer.http_status < 300
            if committed and call.key is not None:
                db.execute(
                    "INSERT INTO idempotency (key, fingerprint, http_status, body) VALUES (?, ?, ?, ?)",
                    (call.key, call.fingerprint, answer.http_status, json.dumps(answer.body)),
                )
            self._log(
                db,
                call,
                http_status=answer.http_status,
                outcome=_outcome(call, answer),
                replayed=answer.replayed,
                committed=committed,
            )
        return answer

    def _act(self, db: sqlite3.Connection, call: ApiCall) -> Answer:
        if call.kind == Kind.PAYMENT:
            return self._authorise(db, call)
        psp_reference = new_psp_reference()
        db.execute(
            "INSERT INTO modifications (psp_reference, kind, payment_psp, merchant_reference, reference, amount_minor,"
            " currency, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                psp_reference,
                call.kind,
                call.payment_psp,
                call.payment_id,
                call.reference,
                call.amount_minor,
                call.currency,
                self._clock_ms(),
            ),
        )
        body: JsonDict = {"merchantAccount": call.merchant_account, "pspReference": psp_reference, "status": "received"}
        if call.kind == Kind.TECHNICAL_CANCEL:
            body["paymentReference"] = call.payment_id
        else:
            assert call.payment_psp is not None
            body["paymentPspReference"] = call.payment_psp
        if call.amount_minor is not None:
            body["amount"] = {"value": call.amount_minor, "currency": call.currency}
        if call.reference is not None:
            body["reference"] = call.reference
        return Answer(201, body)

    def _authorise(self, db: sqlite3.Connection, call: ApiCall) -> Answer:
        assert call.behaviour is not None and call.card_token is not None
        assert call.amount_minor is not None and call.currency is not None
        now_ms, psp_reference = self._clock_ms(), new_psp_reference()
        declined = call.behaviour.decline_reason
        db.execute(
            "INSERT INTO payments (psp_reference, merchant_reference, card_token, status, amount_minor, currency,"
            " created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                psp_reference,
                call.payment_id,
                call.card_token,
                Status.AUTHORISED if declined is None else Status.REFUSED,
                call.amount_minor,
                call.currency,
                now_ms,
            ),
        )
        amount = {"value": call.amount_minor, "currency": call.currency}
        body: JsonDict = {
            "resultCode": "Authorised",
            "pspReference": psp_reference,
            "merchantReference": call.payment_id,
            "amount": amount,
        }
        if declined is not None:
            reason, code = REFUSALS[declined]
            body.update(resultCode="Refused", refusalReason=reason, refusalReasonCode=code)
        item = notification_item(
            event_code="AUTHORISATION",
            psp_reference=psp_reference,
            merchant_reference=call.payment_id,
            merchant_account=self._merchant_account,
            amount_minor=call.amount_minor,
            currency=call.currency,
            success=declined is None,
            at_ms=now_ms,
            reason=None if declined is None else REFUSALS[declined][0],
        )
        if declined is None:
            item["operations"] = ["CANCEL", "CAPTURE", "REFUND"]
        self._enqueue(db, call.payment_id, item)
        return Answer(200, body)

    # --- settlement of modifications -------------------------------------------------------------------------------

    def settle_due(self, settle_after_ms: int) -> int:
        """Settle every modification older than ``settle_after_ms``, by each payment's plan; how many settled."""
        cutoff = self._clock_ms() - settle_after_ms
        with self._write() as db:
            rows = db.execute(
                "SELECT * FROM modifications WHERE settled_at_ms IS NULL AND created_at_ms <= ?"
                " ORDER BY created_at_ms, rowid",
                (cutoff,),
            ).fetchall()
            for row in rows:
                self._settle(db, row, None)
        return len(rows)

    def settle_payment(self, payment_id: str, succeed: bool | None) -> list[JsonDict]:
        """Settle the pending modifications of ``payment_id`` now: succeed (True), fail (False) or by the card
        token's plan (None). Answers the notification items queued."""
        with self._write() as db:
            rows = db.execute(
                "SELECT * FROM modifications WHERE settled_at_ms IS NULL AND merchant_reference = ?"
                " ORDER BY created_at_ms, rowid",
                (payment_id,),
            ).fetchall()
            return [self._settle(db, row, succeed) for row in rows]

    def _settle(self, db: sqlite3.Connection, modification: sqlite3.Row, succeed: bool | None) -> JsonDict:
        kind = modification["kind"]
        if kind == Kind.TECHNICAL_CANCEL:
            payment = db.execute(
                "SELECT * FROM payments WHERE merchant_reference = ? AND status IN (?, ?)"
                " ORDER BY created_at_ms DESC, rowid DESC LIMIT 1",
                (modification["merchant_reference"], Status.AUTHORISED, Status.CAPTURE_FAILED),
            ).fetchone()
        else:
            payment = db.execute(
                "SELECT * FROM payments WHERE psp_reference = ?", (modification["payment_psp"],)
            ).fetchone()
        event_code, success, reason, new_state = _decide(kind, modification, payment, succeed)
        if new_state is not None:
            assert payment is not None
            status, captured_minor, refunded_minor = new_state
            db.execute(
                "UPDATE payments SET status = ?, captured_minor = ?, refunded_minor = ? WHERE psp_reference = ?",
                (status, captured_minor, refunded_minor, payment["psp_reference"]),
            )
        now_ms = self._clock_ms()
        db.execute(
            "UPDATE modifications SET settled_at_ms = ? WHERE psp_reference = ?",
            (now_ms, modification["psp_reference"]),
        )
        amount_minor = modification["amount_minor"]
        if amount_minor is None:  # a cancel names no amount: Adyen reports the payment's
            amount_minor = 0 if payment is None else payment["amount_minor"]
        currency = modification["currency"] or (payment["currency"] if payment is not None else "EUR")
        item = notification_item(
            event_code=event_code,
            psp_reference=modification["psp_reference"],
            # A modification's webhook carries the reference the modification request gave, else the payment's.
            merchant_reference=modification["reference"] or modification["merchant_reference"],
            merchant_account=self._merchant_account,
            amount_minor=int(amount_minor),
            currency=str(currency),
            success=success,
            at_ms=now_ms,
            original_reference=None if payment is None else str(payment["psp_reference"]),
            reason=reason,
        )
        self._enqueue(db, str(modification["merchant_reference"]), item)
        return item

    # --- webhook outbox -------------------------------------------------------------------------------------------

    def _enqueue(self, db: sqlite3.Connection, payment_id: str, item: JsonDict) -> None:
        signed = item if self._hmac_key is None else sign_item(item, self._hmac_key)
        notification = unsigned_notification(signed)
        self._check_notification(notification)  # raises: the transaction that decided it rolls back
        now_ms = self._clock_ms()
        db.execute(
            "INSERT INTO outbox (payment_id, event_code, body, created_at_ms, next_attempt_at_ms)"
            " VALUES (?, ?, ?, ?, ?)",
            (payment_id, item["eventCode"], json.dumps(notification), now_ms, now_ms),
        )

    def due_notifications(self) -> list[Outgoing]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM outbox WHERE delivered_at_ms IS NULL AND next_attempt_at_ms <= ? ORDER BY id LIMIT ?",
                (self._clock_ms(), OUTBOX_BATCH),
            ).fetchall()
        return [
            Outgoing(
                id=row["id"],
                payment_id=row["payment_id"],
                event_code=row["event_code"],
                body=json.loads(row["body"]),
                attempts=row["attempts"],
            )
            for row in rows
        ]

    def mark_delivered(self, outgoing: Outgoing) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE outbox SET delivered_at_ms = ?, attempts = attempts + 1, last_error = NULL WHERE id = ?",
                (self._clock_ms(), outgoing.id),
            )

    def mark_failed(self, outgoing: Outgoing, *, error: str, retry_in_ms: int) -> None:
        with self._write() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at_ms = ? WHERE id = ?",
                (error[:500], self._clock_ms() + retry_in_ms, outgoing.id),
            )


def _outcome(call: ApiCall, answer: Answer) -> str:
    """The call log's outcome: the port's word for an accepted request, else Adyen's errorCode."""
    if not 200 <= answer.http_status < 300:
        return f"error_{answer.body.get('errorCode', answer.http_status)}"
    if call.kind == Kind.PAYMENT:
        return "authorized" if answer.body.get("resultCode") == "Authorised" else "declined"
    return _ACCEPTED_OUTCOME[call.kind]


# (status, captured_minor, refunded_minor) after a modification; None leaves the payment as it is.
NewState = tuple[str, int, int] | None


def _decide(
    kind: str, modification: sqlite3.Row, payment: sqlite3.Row | None, succeed: bool | None
) -> tuple[str, bool, str | None, NewState]:
    """The webhook a settling modification sends (eventCode, success, reason) and the payment's new state."""
    if payment is None:  # only a technical cancel can find no payment (none authorised under that reference)
        return "TECHNICAL_CANCEL", False, "No authorised payment with this reference", None
    status, amount = payment["status"], modification["amount_minor"]
    captured, refunded = int(payment["captured_minor"]), int(payment["refunded_minor"])
    if kind == Kind.CAPTURE:
        if status != Status.AUTHORISED:
            return "CAPTURE", False, f"Payment is {status}: capture not possible", None
        if amount > payment["amount_minor"] or modification["currency"] != payment["currency"]:
            return "CAPTURE", False, "Capture amount exceeds the authorised amount", None
        outcome = _capture_outcome(payment["card_token"], succeed)
        if outcome == _CAPTURED:
            return "CAPTURE", True, None, (Status.CAPTURED, amount, refunded)
        if outcome == _REFUSED:  # refused at once by the acquirer
            return "CAPTURE", False, "Capture refused", (Status.CAPTURE_FAILED, 0, refunded)
        return "CAPTURE_FAILED", True, "Capture Failed", (Status.CAPTURE_FAILED, 0, refunded)
    if kind in (Kind.CANCEL, Kind.TECHNICAL_CANCEL):
        event_code = "CANCELLATION" if kind == Kind.CANCEL else "TECHNICAL_CANCEL"
        if status not in (Status.AUTHORISED, Status.CAPTURE_FAILED):
            return event_code, False, f"Payment is {status}: cancel not possible", None
        if succeed is False:
            return event_code, False, "Cancel failed", None
        return event_code, True, None, (Status.CANCELLED, captured, refunded)
    assert kind == Kind.REFUND
    if status not in (Status.CAPTURED, Status.REFUNDED):
        return "REFUND", False, "Transaction hasn't been captured, refund not possible", None
    if amount > captured - refunded or modification["currency"] != payment["currency"]:
        return "REFUND", False, "Refund amount exceeds the captured amount", None
    if succeed is False:
        return "REFUND_FAILED", True, "Refund Failed", None
    if succeed is None and behaviour_of(payment["card_token"]).refunds_declined:
        return "REFUND", False, "Refund declined", None  # tok_refund_declined: refused at once by the acquirer
    refunded += amount
    return "REFUND", True, None, (Status.REFUNDED if refunded == captured else Status.CAPTURED, captured, refunded)


_CAPTURED, _REFUSED, _FAILED_LATER = "captured", "refused", "failed_later"


def _capture_outcome(card_token: str, succeed: bool | None) -> str:
    """How a capture ends: as asked (``succeed``), else by the card token's capture mode."""
    if succeed is not None:
        return _CAPTURED if succeed else _FAILED_LATER
    mode = behaviour_of(card_token).capture_mode
    return {CaptureMode.FAILS: _REFUSED, CaptureMode.ASYNC_FAILED: _FAILED_LATER}.get(mode, _CAPTURED)
