"""Reconciliation on the local stack's schedule (the sync worker calls `reconcile_locally` once an hour), doing what
EventBridge Scheduler and the settlement bucket do on AWS: the sandbox's feed of yesterday imported, the ledger landed
as Parquet into the stack's folder, the hourly run, and once a UTC day the aged runs; new discrepancies announced on
the emulator's reconciliation topic by the same code as on AWS (saga.reconcile)."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from core.settings import Settings
from ledger.reconciliation.lines import SettlementFormatError
from ledger.reconciliation.sandbox_feed import parse_sandbox_feed
from local.recon.parquet_landing import land_days
from local.sandbox.settlement import SandboxFeedError, fetch_sandbox_feed
from saga import reconcile

__all__ = ["RECON_INTERVAL_MS", "reconcile_locally"]

RECON_INTERVAL_MS = 3_600_000  # hourly, as on AWS
_log = logging.getLogger("paysaga.reconciliation")


def reconcile_locally(settings: Settings, *, landing: Path, aged_done: set[date],
                      now: datetime | None = None) -> list[reconcile.RunReport]:
    """One pass; `aged_done` remembers the days whose aged runs ran (the caller keeps it across passes)."""
    reconciler = reconcile.bootstrap_reconciler(settings)
    moment = now or datetime.now(UTC)
    yesterday = moment.date() - timedelta(days=1)
    if settings.gateway == "sandbox" and settings.sandbox_gateway_url:
        try:
            feed = fetch_sandbox_feed(settings.sandbox_gateway_url, yesterday)
            reconcile.import_source(reconciler, parse_sandbox_feed(feed, f"sandbox feed {yesterday}"))
        except (SandboxFeedError, SettlementFormatError) as failed:
            _log.error("the sandbox feed of %s was not imported: %s", yesterday, failed)
    land_days(reconciler.engine, landing, [yesterday, moment.date()])
    reports = reconcile.run(reconciler, "hourly")
    if moment.date() not in aged_done:
        reports += reconcile.run(reconciler, "aged")
        aged_done.add(moment.date())
    return reports
