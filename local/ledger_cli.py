"""`paysaga ledger ...`: finance reports over the ledger views (balances, trial balance, journal, export).

Every command runs in a READ ONLY transaction and reads only the views the paysaga_finance role may read;
`--as-finance` also switches to that role (SET ROLE), for a connection whose user is a member of it.
"""

from __future__ import annotations

import csv
import enum
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
import pyarrow.parquet as pq
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from sqlalchemy import Connection, create_engine, text

from core.database_roles import FINANCE_ROLE
from core.settings import settings
from ledger import reports

EXPORT_BATCH = 5_000

ledger_app = typer.Typer(help="Ledger reports for finance (read-only).", no_args_is_help=True)

AsFinance = Annotated[bool, typer.Option("--as-finance", help=f"SET ROLE {FINANCE_ROLE} before reading.")]


class ExportFormat(enum.StrEnum):
    csv = "csv"
    parquet = "parquet"


@contextmanager
def finance_reader(as_finance: bool) -> Iterator[Connection]:
    """A READ ONLY transaction; with `as_finance` as the paysaga_finance role (the views only)."""
    engine = create_engine(settings().sqlalchemy_url, pool_pre_ping=False)
    try:
        with engine.connect() as conn, conn.begin():
            conn.execute(text("SET TRANSACTION READ ONLY"))
            if as_finance:
                conn.execute(text(f"SET LOCAL ROLE {FINANCE_ROLE}"))
            yield conn
    finally:
        engine.dispose()


def _console() -> Console:
    # Made per command, not at import, so the terminal width (COLUMNS) is read when the command runs.
    return Console()


def _table(title: str, columns: tuple[str, ...], rows: list[dict[str, Any]]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right" if column.endswith(("_minor", "_id")) else "left")
    for row in rows:
        table.add_row(*(str(row[c]) for c in columns))
    return table


@ledger_app.command()
def balances(as_finance: AsFinance = False) -> None:
    """Every account's pending, posted and available balance (minor units, on the account's normal side)."""
    with finance_reader(as_finance) as conn:
        rows = reports.account_balances(conn)
    _console().print(_table("Account balances", reports.BALANCE_COLUMNS, rows))


@ledger_app.command("trial-balance")
def trial_balance(as_finance: AsFinance = False) -> None:
    """Posted debit/credit balances per account and totals per currency (difference 0 = the books balance)."""
    with finance_reader(as_finance) as conn:
        lines, totals = reports.trial_balance(conn)
    console = _console()
    console.print(_table("Trial balance", reports.TRIAL_COLUMNS, lines))
    console.print(
        _table(
            "Totals",
            ("currency", "total_debits_minor", "total_credits_minor", "difference_minor"),
            totals,
        )
    )
    if any(t["difference_minor"] != 0 for t in totals):
        raise typer.Exit(code=1)


@ledger_app.command()
def journal(payment_id: int, as_finance: AsFinance = False) -> None:
    """Every entry the ledger holds for one payment, in order."""
    with finance_reader(as_finance) as conn:
        rows = reports.journal(conn, payment_id=payment_id)
    console = _console()
    if not rows:
        console.print(f"no ledger entries for payment {payment_id}")
        raise typer.Exit(code=1)
    console.print(_table(f"Journal of payment {payment_id}", reports.JOURNAL_COLUMNS, rows))


_ARROW_SCHEMA = pa.schema(
    [
        ("entry_id", pa.int64()),
        ("transaction_id", pa.int64()),
        ("payment_id", pa.int64()),
        ("transaction_kind", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("account_code", pa.string()),
        ("side", pa.string()),
        ("effect", pa.string()),
        ("amount_minor", pa.int64()),
        ("currency", pa.string()),
    ]
)


def _utc(value: datetime | None, default: datetime) -> datetime:
    if value is None:
        return default
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@ledger_app.command()
def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    since: Annotated[datetime | None, typer.Option(help="From this time (inclusive, UTC if no zone).")] = None,
    until: Annotated[datetime | None, typer.Option(help="Up to this time (exclusive, UTC if no zone).")] = None,
    fmt: Annotated[ExportFormat, typer.Option("--format", help="csv or parquet.")] = ExportFormat.csv,
    as_finance: AsFinance = False,
) -> None:
    """Export journal entries in [since, until) as CSV or Parquet, streamed in bounded batches."""
    start = _utc(since, datetime(1970, 1, 1, tzinfo=UTC))
    end = _utc(until, datetime.now(UTC))
    written = 0
    console = _console()
    with finance_reader(as_finance) as conn:
        total = reports.count_entries(conn, since=start, until=end)
        progress = Progress(
            TextColumn("[bold]export"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
        )
        with progress, output.open("w", newline="") if fmt is ExportFormat.csv else _nullcontext() as handle:
            task = progress.add_task("entries", total=total)
            batches = reports.iter_entries(conn, since=start, until=end, batch_size=EXPORT_BATCH)
            if fmt is ExportFormat.csv:
                assert handle is not None
                writer = csv.DictWriter(handle, fieldnames=list(reports.JOURNAL_COLUMNS))
                writer.writeheader()
                for batch in batches:
                    for row in batch:
                        writer.writerow({**row, "created_at": row["created_at"].isoformat()})
                    written += len(batch)
                    progress.advance(task, len(batch))
            else:
                with pq.ParquetWriter(output, _ARROW_SCHEMA) as parquet:
                    for batch in batches:
                        parquet.write_table(pa.Table.from_pylist(batch, schema=_ARROW_SCHEMA))
                        written += len(batch)
                        progress.advance(task, len(batch))
                    if written == 0:
                        parquet.write_table(_ARROW_SCHEMA.empty_table())
    console.print(f"wrote {written} entries to {output}")


@contextmanager
def _nullcontext() -> Iterator[None]:
    yield None
