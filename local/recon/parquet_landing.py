"""The ledger landed locally: one Parquet file per UTC day and relation, in the layout Firehose writes on AWS
(`ledger-entries/dt=YYYY-MM-DD/`), plus the settlement lines beside it (`settlement-lines/dt=...`, by booking date),
so DuckDB can match from the files alone. A day's file is written whole (to a temporary name, then renamed): landing a
day again replaces it, never half of it."""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine, text

from core.ledger_landing import (
    LANDING_COLUMNS,
    LANDING_PARTITION,
    LANDING_PREFIX,
    SETTLEMENT_LANDING_COLUMNS,
    SETTLEMENT_LANDING_PREFIX,
)
from ledger.reconciliation.landing import day_rows, mark_landed
from ledger.reconciliation.runs import LINES_SQL

__all__ = ["land_days", "ledger_glob", "lines_glob", "sink_name"]

_ARROW = {"bigint": pa.int64(), "string": pa.string(), "timestamp": pa.timestamp("us", tz="UTC")}


def _schema(columns: tuple[tuple[str, str], ...]) -> pa.Schema:
    return pa.schema([(name, _ARROW[kind]) for name, kind in columns])


def sink_name(folder: Path) -> str:
    return f"folder:{folder.resolve()}"


def ledger_glob(folder: Path) -> str:
    return str(folder / LANDING_PREFIX / f"{LANDING_PARTITION}=*" / "*.parquet")


def lines_glob(folder: Path) -> str:
    return str(folder / SETTLEMENT_LANDING_PREFIX / f"{LANDING_PARTITION}=*" / "*.parquet")


def _write(path: Path, rows: list[dict[str, Any]], schema: pa.Schema) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=schema)
    partial = path.with_suffix(".parquet.partial")
    pq.write_table(table, partial)
    os.replace(partial, path)


def _line_rows(engine: Engine, day: date) -> list[dict[str, Any]]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT * FROM ({LINES_SQL}) AS l WHERE l.booked_at >= :s"  # noqa: S608
                                 " AND l.booked_at < :e ORDER BY l.line_id"),
                            {"s": start, "e": start + timedelta(days=1)}).mappings().all()
    return [dict(row) for row in rows]


def land_days(engine: Engine, folder: Path, days: Iterable[date]) -> dict[str, tuple[int, int]]:
    """Land each day (entries, settlement lines); per day what was written."""
    written = {}
    for day in days:
        entries: list[dict[str, Any]] = []
        with engine.connect() as conn:
            for batch in day_rows(conn, day):
                entries += batch
        partition = f"{LANDING_PARTITION}={day.isoformat()}"
        _write(folder / LANDING_PREFIX / partition / "entries.parquet", entries, _schema(LANDING_COLUMNS))
        lines = _line_rows(engine, day)
        _write(folder / SETTLEMENT_LANDING_PREFIX / partition / "lines.parquet", lines,
               _schema(SETTLEMENT_LANDING_COLUMNS))
        with engine.begin() as conn:
            mark_landed(conn, sink=sink_name(folder), day=day, entries=len(entries),
                        last_entry_id=int(entries[-1]["entry_id"]) if entries else None)
        written[day.isoformat()] = (len(entries), len(lines))
    return written
