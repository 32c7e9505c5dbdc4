"""Reconciliation on AWS: one Lambda function (infra: EventBridge Scheduler and the settlement bucket invoke it).

Events:
- an S3 notification (`Records`): each new object under `settlements/<gateway>/` is imported (Adyen's settlement
  detail reports, the sandbox's feeds, Stripe balance transactions as JSON); a file refused as malformed is
  announced on the reconciliation topic and not retried (it will not parse better the second time);
- `{"action": "run", "schedule": "hourly"}`: with Stripe as the gateway, its balance transactions of the last days are
  imported first (idempotent); then one run over PostgreSQL as of now;
- `{"action": "run", "schedule": "aged"}`: the T+7/T+14/T+30 runs of the settlement dates due today;
- `{"action": "land"}`: the ledger's entries of each closed UTC day not landed yet (the last week) to Firehose,
  which writes them as Parquet by date for Athena.
A run that opens discrepancies publishes one message on the reconciliation topic and counts them (an alarm watches).
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import stripe
from sqlalchemy import Connection, Engine, text

from core import observability
from core import telemetry_names as names
from core.aws import client
from core.aws_resources import topic_arn
from core.db import engine as db_engine
from core.settings import Settings, settings
from ledger.reconciliation.importer import ImportResult, import_settlement
from ledger.reconciliation.landing import day_rows, landed_days, mark_landed
from ledger.reconciliation.lines import SettlementFormatError, SettlementSource
from ledger.reconciliation.runs import AGES_DAYS, PostgresSource, RunReport, run_reconciliation
from ledger.reconciliation.sources import FILE_FORMATS, parse_settlement_file
from ledger.reconciliation.stripe_balance import fetch_balance_transactions, lines_from_balance_transactions
from steps.gateway.credentials import with_gateway_secrets

__all__ = ["Reconciler", "RunReport", "bootstrap_reconciler", "handle", "handler", "import_source", "run"]

SETTLEMENTS_PREFIX: Final = "settlements/"
STRIPE_LOOKBACK: Final = timedelta(days=3)  # balance transactions re-read every hour (imports are idempotent)
LANDING_LOOKBACK_DAYS: Final = 7
FIREHOSE_BATCH: Final = 500  # PutRecordBatch's limit
ALERT_DETAILS: Final = 50  # discrepancies listed in one alert (the rest: counted)


@dataclass(frozen=True)
class Reconciler:
    """The collaborators (cosmicpython's bootstrap: tests pass their own)."""

    settings: Settings
    engine: Engine
    aws: Callable[[str], Any]  # a boto3 client by service name
    stripe_client: Callable[[], stripe.StripeClient] | None
    now: Callable[[], datetime]


def bootstrap_reconciler(now_settings: Settings | None = None) -> Reconciler:
    current = now_settings or settings()
    stripe_client = None
    if current.gateway == "stripe":
        def stripe_client() -> stripe.StripeClient:
            filled = with_gateway_secrets(current)
            if filled.stripe_api_key is None:
                raise RuntimeError("STRIPE_API_KEY (or GATEWAY_SECRETS_ARN) is needed to import balance transactions")
            return stripe.StripeClient(
                filled.stripe_api_key.get_secret_value(),
                base_addresses={"api": filled.stripe_api_base.rstrip("/")} if filled.stripe_api_base else None)
    return Reconciler(current, db_engine(current), lambda service: client(service, current), stripe_client,
                      lambda: datetime.now(UTC))


@contextmanager
def _transaction(reconciler: Reconciler) -> Iterator[Connection]:
    with reconciler.engine.begin() as conn:
        yield conn


def import_source(reconciler: Reconciler, source: SettlementSource) -> ImportResult:
    with _transaction(reconciler) as conn:
        result = import_settlement(conn, source)
    observability.logger(names.SERVICE_RECONCILIATION).info(
        "settlement imported", extra={"gateway": source.gateway, "source": source.name,
                                      "new_lines": result.new_line_count, "imported_before": result.imported_before})
    for _ in range(result.new_line_count):
        observability.count(names.SETTLEMENT_LINES_IMPORTED, **{names.DIMENSION_GATEWAY: source.gateway})
    return result


def _alert(reconciler: Reconciler, subject: str, message: dict[str, Any]) -> None:
    sns = reconciler.aws("sns")
    sns.publish(TopicArn=topic_arn(sns, reconciler.settings.recon_alerts_topic), Subject=subject[:100],
                Message=json.dumps(message, default=str))


def import_object(reconciler: Reconciler, bucket: str, key: str) -> ImportResult | None:
    """Import one object of the settlement bucket; None (and an alert) when the file is refused."""
    gateway = key.removeprefix(SETTLEMENTS_PREFIX).split("/", 1)[0]
    if not key.startswith(SETTLEMENTS_PREFIX) or gateway not in FILE_FORMATS:
        raise ValueError(f"s3://{bucket}/{key}: not under {SETTLEMENTS_PREFIX}<{'|'.join(FILE_FORMATS)}>/")
    data = reconciler.aws("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        source = parse_settlement_file(gateway, data, f"s3://{bucket}/{key}")
    except SettlementFormatError as refused:
        observability.logger(names.SERVICE_RECONCILIATION).error("settlement file refused",
                                                                 extra={"reason": str(refused)})
        _alert(reconciler, f"paysaga: settlement file refused ({gateway})", {"file": key, "reason": str(refused)})
        return None
    return import_source(reconciler, source)


def _announce(reconciler: Reconciler, report: RunReport) -> None:
    for finding in report.opened:
        observability.count(names.RECON_DISCREPANCIES_OPENED, **{names.DIMENSION_KIND: str(finding.outcome)})
    observability.count(names.RECON_RUNS)
    if report.opened:
        _alert(reconciler, f"paysaga reconciliation: {len(report.opened)} new discrepancies", {
            "run_id": report.run_id, "schedule": report.schedule, "as_of": report.as_of.isoformat(),
            "counts": report.counts, "opened": [
                {"kind": str(f.outcome), "gateway": f.gateway, "subject": f.subject, "detail": f.detail}
                for f in report.opened[:ALERT_DETAILS]],
            "more": max(0, len(report.opened) - ALERT_DETAILS)})


def run(reconciler: Reconciler, schedule: str) -> list[RunReport]:
    """The hourly run, or the aged runs due today (one per age with a settlement date that age ago)."""
    now = reconciler.now()
    if schedule == "hourly" and reconciler.stripe_client is not None:
        objects = fetch_balance_transactions(reconciler.stripe_client(), since=now - STRIPE_LOOKBACK, until=now)
        import_source(reconciler, lines_from_balance_transactions(
            objects, f"stripe balance transactions {now - STRIPE_LOOKBACK:%Y-%m-%dT%H:%M}Z..{now:%Y-%m-%dT%H:%M}Z"))
    plans: list[tuple[str, date | None]] = [("hourly", None)] if schedule == "hourly" else []
    if schedule == "aged":
        with _transaction(reconciler) as conn:
            for age in AGES_DAYS:
                day = (now - timedelta(days=age)).date()
                if conn.execute(text("SELECT 1 FROM settlement_batches WHERE settlement_date = :d LIMIT 1"),
                                {"d": day}).first() is not None:
                    plans.append((f"t+{age}", day))
    elif schedule != "hourly":
        raise ValueError(f"schedule must be 'hourly' or 'aged', got {schedule!r}")
    reports = []
    for name, settlement_date in plans:
        with _transaction(reconciler) as conn:
            report = run_reconciliation(conn, source=PostgresSource(conn), as_of=now, schedule=name,
                                        settlement_date=settlement_date)
        _announce(reconciler, report)
        reports.append(report)
    return reports


def land(reconciler: Reconciler) -> dict[str, int]:
    """Land each closed day of the last week not landed yet through Firehose; entries per day landed."""
    stream = reconciler.settings.ledger_landing_stream
    if not stream:
        raise RuntimeError("LEDGER_LANDING_STREAM names no Firehose stream: nowhere to land the ledger")
    sink = f"firehose:{stream}"
    firehose = reconciler.aws("firehose")
    today = reconciler.now().date()
    with _transaction(reconciler) as conn:
        done = landed_days(conn, sink=sink)
    landed = {}
    for back in range(LANDING_LOOKBACK_DAYS, 0, -1):
        day = today - timedelta(days=back)
        if day in done:
            continue
        count, last = 0, None
        with _transaction(reconciler) as conn:
            for rows in day_rows(conn, day):
                for start in range(0, len(rows), FIREHOSE_BATCH):
                    _put(firehose, stream, rows[start:start + FIREHOSE_BATCH])
                count += len(rows)
                last = int(rows[-1]["entry_id"])
            mark_landed(conn, sink=sink, day=day, entries=count, last_entry_id=last)
        landed[day.isoformat()] = count
    return landed


def _put(firehose: Any, stream: str, rows: list[dict[str, Any]]) -> None:
    records = [{"Data": (json.dumps(row, default=_json_value) + "\n").encode()} for row in rows]
    answer = firehose.put_record_batch(DeliveryStreamName=stream, Records=records)
    if answer.get("FailedPutCount"):  # once more with the ones refused (throttling), then give up loudly
        again = [r for r, status in zip(records, answer["RequestResponses"], strict=True) if status.get("ErrorCode")]
        if firehose.put_record_batch(DeliveryStreamName=stream, Records=again).get("FailedPutCount"):
            raise RuntimeError(f"Firehose {stream} refused records twice; the day is not marked landed")


def _json_value(value: object) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")  # what Glue's timestamp parses
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def handle(reconciler: Reconciler, event: dict[str, Any]) -> dict[str, Any]:
    if "Records" in event:
        imported = []
        for record in event["Records"]:
            bucket = record["s3"]["bucket"]["name"]
            key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
            result = import_object(reconciler, bucket, key)
            imported.append({"key": key, "new_lines": None if result is None else result.new_line_count})
        return {"imported": imported}
    action = event.get("action")
    if action == "run":
        reports = run(reconciler, str(event.get("schedule", "hourly")))
        return {"runs": [{"run_id": r.run_id, "schedule": r.schedule, "counts": r.counts, "opened": len(r.opened)}
                         for r in reports]}
    if action == "land":
        return {"landed": land(reconciler)}
    raise ValueError(f"unknown event: expected S3 Records or action run|land, got {sorted(event)}")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    with observability.invocation("reconcile", context, service=names.SERVICE_RECONCILIATION):
        return handle(bootstrap_reconciler(), event)
