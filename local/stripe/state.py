"""The Stripe front's own state in SQLite: idempotency records, fault attempt counters, the PaymentIntents it saw
created (for search and to complete localstripe's objects), and the call log.

One connection used under one lock, WAL mode: the front is one process (one event loop), and with a file path its
state survives a restart of the front, so a fault token fired once stays fired (``attempts``) and a stored answer is
still replayed. ``:memory:`` keeps it for the life of the process only.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from local.server_db import JsonDict, ServerDb

_SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    endpoint TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    http_status INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS intents (
    intent_id TEXT PRIMARY KEY,
    payment_id TEXT,
    token TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    captured_minor INTEGER,
    decline TEXT,
    created_at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS intents_by_payment ON intents (payment_id, created_at_ms);
"""


@dataclass(frozen=True)
class StoredAnswer:
    endpoint: str
    fingerprint: str
    http_status: int
    body: JsonDict


@dataclass(frozen=True)
class Intent:
    """A PaymentIntent created through the front: whose it is, its test token, and what localstripe cannot say."""

    intent_id: str
    payment_id: str | None
    token: str
    amount_minor: int
    captured_minor: int | None
    decline: JsonDict | None  # the card error of a declined authorization: code, decline_code, message


@dataclass(frozen=True)
class CallRow:
    operation: str
    payment_id: str
    idempotency_key: str
    amount_minor: int | None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class FrontStore(ServerDb):
    def __init__(self, path: Path | str) -> None:
        super().__init__(path, _SCHEMA)

    def reset(self) -> None:
        with self._write() as db:
            for table in ("idempotency", "attempts", "intents", "calls"):
                db.execute(f"DELETE FROM {table}")  # noqa: S608  # fixed table names

    # --- idempotency ------------------------------------------------------------------------------------------------

    def stored(self, key: str) -> StoredAnswer | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM idempotency WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return StoredAnswer(row["endpoint"], row["fingerprint"], int(row["http_status"]), json.loads(row["body"]))

    def store(self, key: str, answer: StoredAnswer) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO idempotency (key, endpoint, fingerprint, http_status, body)"
                " VALUES (?, ?, ?, ?, ?)",
                (key, answer.endpoint, answer.fingerprint, answer.http_status, json.dumps(answer.body)),
            )

    # --- PaymentIntents ---------------------------------------------------------------------------------------------

    def add_intent(self, intent: Intent) -> None:
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO intents (intent_id, payment_id, token, amount_minor, captured_minor, decline,"
                " created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    intent.intent_id,
                    intent.payment_id,
                    intent.token,
                    intent.amount_minor,
                    intent.captured_minor,
                    None if intent.decline is None else json.dumps(intent.decline),
                    _now_ms(),
                ),
            )

    def set_captured(self, intent_id: str, captured_minor: int) -> None:
        with self._write() as db:
            db.execute("UPDATE intents SET captured_minor = ? WHERE intent_id = ?", (captured_minor, intent_id))

    def intent(self, intent_id: str) -> Intent | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM intents WHERE intent_id = ?", (intent_id,)).fetchone()
        return None if row is None else _intent(row)

    def intents_of(self, payment_id: str) -> list[Intent]:
        """The PaymentIntents created for ``payment_id``, newest first (Stripe's search order)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM intents WHERE payment_id = ? ORDER BY created_at_ms DESC, rowid DESC", (payment_id,)
            ).fetchall()
        return [_intent(row) for row in rows]

    # --- call log ---------------------------------------------------------------------------------------------------

    def log_call(self, row: CallRow, *, http_status: int, outcome: str, replayed: bool, committed: bool) -> None:
        with self._write() as db:
            self.insert_call(db, at_ms=_now_ms(), operation=row.operation, payment_id=row.payment_id,
                             idempotency_key=row.idempotency_key, amount_minor=row.amount_minor,
                             http_status=http_status, outcome=outcome, replayed=replayed, committed=committed)


def _intent(row: sqlite3.Row) -> Intent:
    return Intent(
        intent_id=row["intent_id"],
        payment_id=row["payment_id"],
        token=row["token"],
        amount_minor=int(row["amount_minor"]),
        captured_minor=None if row["captured_minor"] is None else int(row["captured_minor"]),
        decline=None if row["decline"] is None else json.loads(row["decline"]),
    )
