"""The matcher's source over the landed Parquet files: DuckDB runs the very SQL PostgreSQL runs (Athena's stand-in:
the same text would run there over the Glue table)."""

from __future__ import annotations

import glob
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from ledger.reconciliation.matching import match_sql
from local.recon.parquet_landing import ledger_glob, lines_glob

__all__ = ["ParquetSource"]


class ParquetSource:
    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        for pattern in (ledger_glob(self.folder), lines_glob(self.folder)):
            if not glob.glob(pattern):
                raise FileNotFoundError(f"no landed files match {pattern}: land the ledger first (paysaga recon land)")

    @property
    def name(self) -> str:
        return f"parquet:{self.folder}"

    def rows(self, template: str, as_of: datetime) -> Sequence[Mapping[str, Any]]:
        journal = f"read_parquet('{ledger_glob(self.folder)}', hive_partitioning = true)"
        lines = f"read_parquet('{lines_glob(self.folder)}', hive_partitioning = true)"
        with duckdb.connect() as db:
            db.execute("SET TimeZone = 'UTC'")
            cursor = db.execute(match_sql(template, journal=journal, lines=lines, as_of=as_of))
            columns = [d[0] for d in cursor.description]
            return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
