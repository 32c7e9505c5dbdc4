"""The settlement of a sandbox seed (property 17): what the sandbox gateway settled for the seed's payments imported
into the ledger as finance would import it, with what can go wrong around it: the importer crashes before its
transaction commits, two importers take the same feed at once, the feed is imported again; then one reconciliation
run. The checks (local/simulate/checks.py) read what it recorded.

The sandbox's day is still open while seeds run, so its payout line is left out (it changes as the day grows; a
restated line is refused, by design): the capture and refund lines are final once written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import text

from ledger.reconciliation.importer import ImportResult, import_settlement
from ledger.reconciliation.lines import LineType, SettlementSource
from ledger.reconciliation.runs import PostgresSource, RunReport, run_reconciliation
from ledger.reconciliation.sandbox_feed import parse_sandbox_feed
from local.sandbox.settlement import fetch_sandbox_feed
from local.simulate.world import Backends

__all__ = ["SettlementRun", "settle_seed"]

AS_OF_AHEAD = timedelta(days=2)  # past the sandbox's settlement delay: every booked movement is due


class _Crash(Exception):
    """The importer dying after its statements ran, before its transaction committed."""


@dataclass
class SettlementRun:
    days: tuple[date, ...] = ()
    lines_in_feed: int = 0
    crashed_import_left: int = -1  # lines and settlement transactions a crashed import left behind (must be 0)
    concurrent: list[ImportResult] = field(default_factory=list)
    again: ImportResult | None = None
    report: RunReport | None = None
    errors: list[str] = field(default_factory=list)


def _counts(backends: Backends) -> tuple[int, int]:
    with backends.engine.connect() as conn:
        return (int(conn.execute(text("SELECT count(*) FROM settlement_lines")).scalar_one()),
                int(conn.execute(text("SELECT count(*) FROM ledger_transactions WHERE kind = 'settlement'"))
                    .scalar_one()))


def _feed(backends: Backends, days: tuple[date, ...]) -> SettlementSource:
    base = backends.settings.sandbox_gateway_url
    assert base, "a sandbox seed runs with the sandbox gateway"
    lines = []
    for day in days:
        parsed = parse_sandbox_feed(fetch_sandbox_feed(base, day), f"sandbox feed {day}")
        lines += [line for line in parsed.lines if line.type != LineType.PAYOUT]
    digest = hashlib.sha256(repr([line.line_key for line in lines]).encode()).hexdigest()
    return SettlementSource("sandbox", f"sandbox feed {', '.join(map(str, days))} (open day)", digest, tuple(lines))


def settle_seed(backends: Backends, started: datetime) -> SettlementRun:
    today = datetime.now(UTC).date()
    days = tuple(sorted({started.date(), today}))
    run = SettlementRun(days=days)
    source = _feed(backends, days)
    run.lines_in_feed = len(source.lines)
    before = _counts(backends)
    try:
        with backends.engine.begin() as conn:
            import_settlement(conn, source)
            raise _Crash
    except _Crash:
        pass
    after = _counts(backends)
    run.crashed_import_left = (after[0] - before[0]) + (after[1] - before[1])

    start = threading.Barrier(2)
    lock = threading.Lock()

    def importer() -> None:
        try:
            start.wait()
            with backends.engine.begin() as conn:
                result = import_settlement(conn, source)
            with lock:
                run.concurrent.append(result)
        except Exception as failed:  # recorded: the checks report it as a violation
            with lock:
                run.errors.append(f"concurrent import failed: {failed!r}")

    threads = [threading.Thread(target=importer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with backends.engine.begin() as conn:
        run.again = import_settlement(conn, dataclasses.replace(source, name=source.name + " again"))
    with backends.engine.begin() as conn:
        run.report = run_reconciliation(conn, source=PostgresSource(conn), as_of=datetime.now(UTC) + AS_OF_AHEAD)
    return run
