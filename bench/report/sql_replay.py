"""The PostgreSQL limit of one payment: capture every statement one saga issues (in-process, through SQLAlchemy's
cursor events), then replay that sequence with psycopg directly, with fresh ids, as many times as asked.

Fresh ids: the captured payment id (int, and inside strings such as the execution ARN or the step input), every ULID
inside a string (order/customer references, event ids, execution names) except the merchant's, and every id an
INSERT RETURNed (ledger transaction ids), which later statements of the same payment pass back.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Json, Jsonb
from sqlalchemy import Engine, event
from sqlalchemy.pool import Pool
from ulid import ULID

_ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
# Fresh payment ids far above any Snowflake id of this decade: 2**62 + n still fits a signed 64-bit column.
_FRESH_ID_BASE = 2**62
_fresh_ids = itertools.count(1)
_fresh_lock = threading.Lock()


@dataclass(frozen=True)
class Op:
    """One captured step: a statement (with its parameters and the id columns it returned), a commit or a rollback
    on one of the payment's connections (slot = order of first use)."""

    kind: str  # "sql" | "commit" | "rollback"
    slot: int
    statement: str = ""
    parameters: Any = None
    executemany: bool = False
    returned_ids: tuple[tuple[int, ...], ...] = ()  # INSERT ... RETURNING: per row, the int id / *_id values


@dataclass
class Capture:
    payment_id: int = 0
    keep: frozenset[str] = frozenset()  # ULIDs that name shared things (the merchant id): never replaced
    ops: list[Op] = field(default_factory=list)
    _slots: dict[int, int] = field(default_factory=dict)

    def slot(self, dbapi_connection: Any) -> int:
        return self._slots.setdefault(id(dbapi_connection), len(self._slots))

    @property
    def statements(self) -> list[Op]:
        return [op for op in self.ops if op.kind == "sql"]

    @property
    def commits(self) -> int:
        return sum(1 for op in self.ops if op.kind == "commit")

    @property
    def slots(self) -> int:
        return len(self._slots)


def _id_columns(cursor: Any) -> tuple[tuple[int, ...], ...]:
    """The id-like int cells of what the statement returned; the cursor is rewound so the caller still reads all."""
    if cursor.description is None:
        return ()
    wanted = [i for i, column in enumerate(cursor.description) if column.name == "id" or column.name.endswith("_id")]
    if not wanted:
        return ()
    rows = cursor.fetchall()
    if rows:  # psycopg refuses to scroll an empty result
        cursor.scroll(0, mode="absolute")
    return tuple(tuple(row[i] for i in wanted if isinstance(row[i], int) and not isinstance(row[i], bool))
                 for row in rows)


@contextmanager
def capturing() -> Iterator[Capture]:
    """Record every statement, commit and rollback of every SQLAlchemy engine in this process while inside."""
    capture = Capture()
    lock = threading.Lock()

    def after(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        # Only an INSERT's RETURNING yields new ids; a SELECT's rows may come back in another order under
        # concurrency (no ORDER BY), and pairing them by position would swap accounts.
        returned = _id_columns(cursor) if statement.lstrip().upper().startswith("INSERT") else ()
        with lock:
            capture.ops.append(Op("sql", capture.slot(conn.connection.dbapi_connection), statement, parameters,
                                  executemany, returned))

    def commit(conn: Any) -> None:
        with lock:
            capture.ops.append(Op("commit", capture.slot(conn.connection.dbapi_connection)))

    def rollback(conn: Any) -> None:
        with lock:
            capture.ops.append(Op("rollback", capture.slot(conn.connection.dbapi_connection)))

    def reset(dbapi_connection: Any, record: Any, *args: Any) -> None:
        # A connection given back to the pool is rolled back there (reset on return), not through Connection.
        with lock:
            if id(dbapi_connection) in capture._slots:
                capture.ops.append(Op("rollback", capture.slot(dbapi_connection)))

    listeners: list[tuple[Any, str, Callable[..., None]]] = [
        (Engine, "after_cursor_execute", after), (Engine, "commit", commit), (Engine, "rollback", rollback),
        (Pool, "reset", reset)]
    for target, name, fn in listeners:
        event.listen(target, name, fn)
    try:
        yield capture
    finally:
        for target, name, fn in listeners:
            event.remove(target, name, fn)


class _Fresh:
    """The substitution for one replayed payment."""

    def __init__(self, payment_id: int, keep: frozenset[str]) -> None:
        with _fresh_lock:
            self.new_payment_id = _FRESH_ID_BASE + next(_fresh_ids)
        self.ints: dict[int, int] = {payment_id: self.new_payment_id}
        self.old_text, self.new_text = str(payment_id), str(self.new_payment_id)
        self.ulids: dict[str, str] = {ulid: ulid for ulid in keep}

    def _ulid(self, match: re.Match[str]) -> str:
        return self.ulids.setdefault(match.group(0), str(ULID()))

    def value(self, v: Any) -> Any:
        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, int):
            return self.ints.get(v, v)
        if isinstance(v, str):
            return _ULID.sub(self._ulid, v.replace(self.old_text, self.new_text))
        if isinstance(v, list | tuple):
            return type(v)(self.value(x) for x in v)
        if isinstance(v, dict):
            return {k: self.value(x) for k, x in v.items()}
        if isinstance(v, Jsonb | Json):
            return type(v)(self.value(v.obj))
        return v

    def learn(self, captured: tuple[tuple[int, ...], ...], replayed: tuple[tuple[int, ...], ...]) -> None:
        for old_row, new_row in zip(captured, replayed, strict=False):
            for old, new in zip(old_row, new_row, strict=False):
                if old != new:
                    self.ints[old] = new


class Replayer:
    """One worker's connections (one per captured slot); `run()` replays one payment and returns its new id."""

    def __init__(self, capture: Capture, url: str) -> None:
        self.capture = capture
        self.conns = [psycopg.connect(url) for _ in range(capture.slots)]

    def run(self) -> int:
        fresh = _Fresh(self.capture.payment_id, self.capture.keep)
        try:
            self._replay(fresh)
        except BaseException:
            for conn in self.conns:
                conn.rollback()  # leave no aborted transaction for the next payment
            raise
        for conn in self.conns:
            conn.rollback()  # end what the capture left open, as the pool's reset on return does
        return fresh.new_payment_id

    def _replay(self, fresh: _Fresh) -> None:
        for op in self.capture.ops:
            conn = self.conns[op.slot]
            if op.kind == "commit":
                conn.commit()
            elif op.kind == "rollback":
                conn.rollback()
            else:
                with conn.cursor() as cur:
                    params = fresh.value(op.parameters)
                    if op.executemany:
                        cur.executemany(op.statement, params)
                    else:
                        cur.execute(op.statement, params)
                    if op.returned_ids:
                        fresh.learn(op.returned_ids, _id_columns(cur))

    def close(self) -> None:
        for conn in self.conns:
            conn.close()
