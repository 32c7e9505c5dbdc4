"""`paysaga recon ...`: settlement imports, reconciliation runs, discrepancies, the ledger's landing, for finance.

Imports and runs write (each in one transaction: a refused file leaves nothing behind); `discrepancies`, `history`
and `batches` only read, through the finance views (`--as-finance` reads as the paysaga_finance role).
"""

from __future__ import annotations

import csv
import enum
import getpass
import io
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import Engine, text

from core.database_roles import FINANCE_ROLE
from core.db import engine_for
from core.settings import settings
from ledger.reconciliation.discrepancies import (
    DISCREPANCY_COLUMNS,
    DiscrepancyError,
    history,
    list_discrepancies,
    resolve,
)
from ledger.reconciliation.importer import ImportResult, SettlementConflict, import_settlement
from ledger.reconciliation.lines import SettlementFormatError, SettlementSource
from ledger.reconciliation.matching import DISCREPANCY_OUTCOMES
from ledger.reconciliation.runs import MatchSource, PostgresSource, RunReport, run_reconciliation
from ledger.reconciliation.sandbox_feed import parse_sandbox_feed
from ledger.reconciliation.schema import DISCREPANCY_STATUSES, RUN_SCHEDULES
from ledger.reconciliation.sources import parse_settlement_file
from ledger.reconciliation.stripe_balance import fetch_balance_transactions, lines_from_balance_transactions
from local.ledger_cli import finance_reader
from local.stack.state import stack_dir

recon_app = typer.Typer(help="Reconciliation: settlement imports, runs and discrepancies (finance).",
                        no_args_is_help=True)
import_app = typer.Typer(help="Import what a gateway settled (idempotent: the same content again changes nothing).",
                         no_args_is_help=True)
recon_app.add_typer(import_app, name="import")

# The local landing folder, in the stack's (on AWS the ledger lands through Firehose into S3); the sync worker lands
# there every hour.
DEFAULT_LANDING = stack_dir() / "landing"
AsFinance = Annotated[bool, typer.Option("--as-finance", help=f"SET ROLE {FINANCE_ROLE} before reading.")]


class Format(enum.StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


class Source(enum.StrEnum):
    postgresql = "postgresql"
    parquet = "parquet"


def _engine() -> Engine:
    return engine_for(settings().sqlalchemy_url)


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(1)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _import(source: SettlementSource) -> ImportResult:
    engine = _engine()
    try:
        with engine.begin() as conn:
            result = import_settlement(conn, source)
    except SettlementConflict as conflict:
        raise _fail(str(conflict)) from None
    finally:
        engine.dispose()
    if result.imported_before:
        Console().print(f"{source.name}: imported before ({source.content_sha256[:12]}); nothing changed")
    else:
        Console().print(f"{source.name}: {result.new_line_count} new lines of {result.line_count} "
                        f"(batches {', '.join(result.batches) or 'none'}); "
                        f"{len(result.settlement_transaction_ids)} settlement transactions posted")
    return result


def _parse_file(gateway: str, path: Path) -> SettlementSource:
    try:
        return parse_settlement_file(gateway, path.read_bytes(), path.name)
    except (OSError, SettlementFormatError) as refused:
        raise _fail(f"{refused}; nothing imported") from None


@import_app.command("adyen")
def import_adyen(file: Annotated[Path, typer.Argument(help="Adyen's settlement detail report (CSV).")]) -> None:
    """Import an Adyen settlement detail report (one payout batch)."""
    _import(_parse_file("adyen", file))


@import_app.command("sandbox")
def import_sandbox(
    file: Annotated[Path | None, typer.Argument(help="A sandbox feed file; else fetched from the server.")] = None,
    day: Annotated[datetime | None, typer.Option("--date", formats=["%Y-%m-%d"],
                                                 help="The UTC day to fetch (default: yesterday).")] = None,
    open_day: Annotated[bool, typer.Option("--open-day", help="Allow today's feed, which still grows: its payout "
                                                              "line will differ later (and be refused then).")] = False,
) -> None:
    """Import the sandbox gateway's settlement feed of a day (from the running server, or a file)."""
    if file is not None:
        _import(_parse_file("sandbox", file))
        return
    wanted: date = day.date() if day else datetime.now(UTC).date() - timedelta(days=1)
    from local.sandbox.settlement import fetch_sandbox_feed  # noqa: PLC0415  # imported when used: the CLI starts fast

    if wanted >= datetime.now(UTC).date() and not open_day:
        raise _fail(f"{wanted} is not over yet (UTC): its feed still grows; pass --open-day to import it anyway")
    base = settings().sandbox_gateway_url
    if not base:
        raise _fail("SANDBOX_GATEWAY_URL is not set: start the stack (paysaga run) or pass a feed file")
    data = fetch_sandbox_feed(base, wanted)
    try:
        source = parse_sandbox_feed(data, f"sandbox feed {wanted}")
    except SettlementFormatError as refused:
        raise _fail(f"{refused}; nothing imported") from None
    _import(source)


@import_app.command("stripe")
def import_stripe(
    since: Annotated[datetime | None, typer.Option(help="Balance transactions created from (UTC if no zone).")] = None,
    until: Annotated[datetime | None, typer.Option(help="... up to, exclusive (default: now).")] = None,
    payout: Annotated[str | None, typer.Option(help="Only this payout's transactions (po_...).")] = None,
    file: Annotated[Path | None, typer.Option(help="Balance transactions from a JSON file instead of the API.")] = None,
) -> None:
    """Import Stripe balance transactions: through the API (STRIPE_API_KEY, STRIPE_API_BASE) or from a file."""
    if file is not None:
        if since or until or payout:
            raise _fail("--file reads the file only: --since/--until/--payout apply to the API")
        _import(_parse_file("stripe", file))
        return
    import stripe  # noqa: PLC0415  # imported when used: the CLI starts fast

    if since is None and payout is None:
        raise _fail("name --since (and --until) or --payout: which balance transactions to import")
    now = settings()
    if now.stripe_api_key is None:
        raise _fail("STRIPE_API_KEY is not set (with PAYMENT_GATEWAY=stripe the local stack sets it)")
    client = stripe.StripeClient(
        now.stripe_api_key.get_secret_value(),
        base_addresses={"api": now.stripe_api_base.rstrip("/")} if now.stripe_api_base else None)
    start = _utc(since) if since else datetime(2010, 1, 1, tzinfo=UTC)
    end = _utc(until) if until else None
    objects = fetch_balance_transactions(client, since=start, until=end, payout=payout)
    name = f"stripe balance transactions {payout or ''} since {start.isoformat()}" + (f" until {end.isoformat()}"
                                                                                     if end else "")
    try:
        source = lines_from_balance_transactions(objects, name.replace("  ", " "), payout=payout)
    except SettlementFormatError as refused:
        raise _fail(f"{refused}; nothing imported") from None
    _import(source)


def _print_report(report: RunReport) -> None:
    console = Console()
    console.print(f"run {report.run_id} ({report.schedule}) as of {report.as_of:%Y-%m-%d %H:%M:%S} UTC, "
                  f"read from {escape(report.source)}", soft_wrap=True)
    table = Table()
    table.add_column("outcome")
    table.add_column("count", justify="right")
    for outcome, count in sorted(report.counts.items()):
        table.add_row(outcome, str(count))
    console.print(table)
    console.print(f"{len(report.opened)} new discrepancies, {report.closed} no longer found (resolved by the run)")
    for finding in report.opened:
        console.print(f"  {finding.outcome}: {finding.gateway} {finding.subject}: {escape(finding.detail)}")


@recon_app.command("run")
def run_command(
    as_of: Annotated[datetime | None, typer.Option("--as-of", help="Match as of this time (UTC if no zone; "
                                                                   "default now).")] = None,
    source: Annotated[Source, typer.Option(help="Read the ledger and lines from PostgreSQL or the landed "
                                                "Parquet files (DuckDB).")] = Source.postgresql,
    landing: Annotated[Path, typer.Option(help="The landing folder (--source parquet).")] = DEFAULT_LANDING,
) -> None:
    """Match the ledger against what was settled; record and print the discrepancies."""
    from local.recon.duckdb_source import ParquetSource  # noqa: PLC0415  # DuckDB loads only for parquet runs

    moment = _utc(as_of) if as_of else datetime.now(UTC)
    engine = _engine()
    try:
        with engine.begin() as conn:
            reader: MatchSource = PostgresSource(conn)
            if source is Source.parquet:
                try:
                    reader = ParquetSource(landing)
                except FileNotFoundError as missing:
                    raise _fail(str(missing)) from None
            report = run_reconciliation(conn, source=reader, as_of=moment, schedule=RUN_SCHEDULES[0])
    finally:
        engine.dispose()
    _print_report(report)


def _emit(rows: list[dict[str, Any]], columns: tuple[str, ...], fmt: Format, title: str) -> None:
    if fmt is Format.json:
        typer.echo(json.dumps(rows, default=str, indent=2))
    elif fmt is Format.csv:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
        typer.echo(out.getvalue(), nl=False)
    else:
        table = Table(title=title)
        for column in columns:
            table.add_column(column, justify="right" if column.endswith(("_minor", "_id")) else "left")
        for row in rows:
            table.add_row(*("" if row[c] is None else escape(str(row[c])) for c in columns))
        Console().print(table)


@recon_app.command("discrepancies")
def discrepancies_command(
    status: Annotated[str | None, typer.Option(help=f"One of {', '.join(DISCREPANCY_STATUSES)}.")] = None,
    kind: Annotated[str | None, typer.Option(help="One kind (amount_mismatch, missing_from_settlement, ...).")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="table, json or csv.")] = Format.table,
    as_finance: AsFinance = False,
) -> None:
    """The discrepancies, newest first."""
    if status is not None and status not in DISCREPANCY_STATUSES:
        raise _fail(f"--status must be one of {', '.join(DISCREPANCY_STATUSES)}, not {status!r}")
    kinds = sorted(str(k) for k in DISCREPANCY_OUTCOMES)
    if kind is not None and kind not in kinds:
        raise _fail(f"--kind must be one of {', '.join(kinds)}, not {kind!r}")
    with finance_reader(as_finance) as conn:
        rows = list_discrepancies(conn, status=status, kind=kind)
    _emit(rows, DISCREPANCY_COLUMNS, fmt, "Discrepancies")


@recon_app.command("resolve")
def resolve_command(
    discrepancy_id: Annotated[int, typer.Argument(help="The discrepancy's id.")],
    note: Annotated[str, typer.Option(help="What was found and done (kept in the history).")],
    by: Annotated[str | None, typer.Option(help="Who resolves it (default: your login name).")] = None,
) -> None:
    """Resolve an open discrepancy with a note."""
    engine = _engine()
    try:
        with engine.begin() as conn:
            row = resolve(conn, discrepancy_id, by=by or getpass.getuser(), note=note)
    except DiscrepancyError as refused:
        raise _fail(str(refused)) from None
    finally:
        engine.dispose()
    Console().print(f"discrepancy {discrepancy_id} resolved by {escape(str(row['resolved_by']))}")


@recon_app.command("history")
def history_command(discrepancy_id: Annotated[int, typer.Argument()], as_finance: AsFinance = False) -> None:
    """A discrepancy's history (opened, resolved: who, when, why)."""
    with finance_reader(as_finance) as conn:
        rows = history(conn, discrepancy_id)
    if not rows:
        raise _fail(f"no discrepancy {discrepancy_id}")
    _emit(rows, ("event_id", "at", "action", "actor", "note", "run_id"), Format.table,
          f"Discrepancy {discrepancy_id}")


@recon_app.command("batches")
def batches_command(fmt: Annotated[Format, typer.Option("--format")] = Format.table,
                    as_finance: AsFinance = False) -> None:
    """Settlement batches with their lines and what they left in the gateway clearing account (0 = matched)."""
    with finance_reader(as_finance) as conn:
        rows = [dict(r) for r in conn.execute(text(
            "SELECT b.batch_id, b.gateway, b.reference, b.settlement_date, b.line_count, c.currency,"
            " c.clearing_net_minor FROM v_settlement_batches b LEFT JOIN v_batch_clearing c ON c.batch_id = b.batch_id"
            " ORDER BY b.batch_id DESC, c.currency")).mappings()]
    _emit(rows, ("batch_id", "gateway", "reference", "settlement_date", "line_count", "currency",
                 "clearing_net_minor"), fmt, "Settlement batches")


@recon_app.command("land")
def land_command(
    day: Annotated[datetime | None, typer.Option("--date", formats=["%Y-%m-%d"], help="One UTC day (default: "
                                                                                       "yesterday and today).")] = None,
    folder: Annotated[Path, typer.Option(help="The landing folder.")] = DEFAULT_LANDING,
) -> None:
    """Land the ledger's entries (and the settlement lines) as Parquet by UTC date into a folder."""
    from local.recon.parquet_landing import land_days  # noqa: PLC0415  # pyarrow loads only to land

    today = datetime.now(UTC).date()
    days = [day.date()] if day else [today - timedelta(days=1), today]
    engine = _engine()
    try:
        written = land_days(engine, folder, days)
    finally:
        engine.dispose()
    for landed_day, (entries, lines) in written.items():
        Console().print(f"{landed_day}: {entries} entries, {lines} settlement lines -> {folder}")
