"""The SQLite file of a local gateway server (sandbox, Stripe front, Adyen): one connection used under one lock, WAL,
every write in a transaction committed before the answer is sent, so the state survives a restart of the server and
of its clients. Each server adds its own tables; all share the first-attempt counters (a fault fired once stays
fired after a restart) and the call log, whose rows are the same for every gateway so that the tests and the
simulation read them alike."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = ["CALL_LOG_LIMIT", "JsonDict", "ServerDb"]

JsonDict = dict[str, Any]
CALL_LOG_LIMIT = 1000  # rows one call-log answer returns at most

_SHARED_SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (key TEXT PRIMARY KEY, count INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS calls (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms INTEGER NOT NULL,
    operation TEXT NOT NULL,
    payment_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    amount_minor INTEGER,
    http_status INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    replayed INTEGER NOT NULL,
    committed INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS calls_by_payment ON calls (payment_id, seq);
"""


class ServerDb:
    def __init__(self, path: Path | str, schema: str) -> None:
        self._lock = threading.Lock()
        # One connection, used under the lock; any thread may use it (Starlette may run a server in its threadpool).
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=5.0)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL survives a process crash
        self._db.executescript(schema + _SHARED_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def count_attempt(self, key: str) -> int:
        """Count one more attempt under ``key`` (persisted: a restart does not re-arm a first-attempt fault)."""
        with self._write() as db:
            db.execute(
                "INSERT INTO attempts (key, count) VALUES (?, 1) ON CONFLICT (key) DO UPDATE SET count = count + 1",
                (key,),
            )
            row = db.execute("SELECT count FROM attempts WHERE key = ?", (key,)).fetchone()
        return int(row["count"])

    def calls(self, payment_id: str | None) -> list[JsonDict]:
        """The call log, oldest first (of one payment, if given), at most CALL_LOG_LIMIT rows."""
        query = "SELECT * FROM calls"
        args: tuple[str, ...] = ()
        if payment_id is not None:
            query, args = query + " WHERE payment_id = ?", (payment_id,)
        with self._lock:
            rows = self._db.execute(query + f" ORDER BY seq LIMIT {CALL_LOG_LIMIT}", args).fetchall()
        return [{**dict(row), "replayed": bool(row["replayed"]), "committed": bool(row["committed"])} for row in rows]

    @staticmethod
    def insert_call(db: sqlite3.Connection, *, at_ms: int, operation: str, payment_id: str, idempotency_key: str,
                    amount_minor: int | None, http_status: int, outcome: str, replayed: bool,
                    committed: bool) -> None:
        """One call-log row, inside the caller's transaction."""
        db.execute(
            "INSERT INTO calls (at_ms, operation, payment_id, idempotency_key, amount_minor, http_status,"
            " outcome, replayed, committed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (at_ms, operation, payment_id, idempotency_key, amount_minor, http_status, outcome, replayed, committed),
        )
