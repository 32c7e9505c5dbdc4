"""The reconciliation function (saga/reconcile.py) against the AWS emulator and PostgreSQL: a settlement file landing
in the bucket is imported once, a malformed one is refused and announced; a run that opens discrepancies announces
them once; the ledger's closed days land through Firehose once."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from core.aws import client
from core.aws_resources import topic_arn
from core.settings import Settings
from ledger.reconciliation.lines import LineType
from ledger.reconciliation.terms import expected_fee_minor
from saga import reconcile
from tests.integration.reconciliation.support import captured, new_merchant

BUCKET = "paysaga-settlements-test"
HEADER = ("line_id,batch,type,payment_id,gateway_reference,refund_id,operation_reference,currency,gross_minor,"
          "fee_minor,net_minor,booked_at")


def _feed(payment: int, amount: int, day: str) -> bytes:
    fee = expected_fee_minor("sandbox", LineType.CAPTURE, amount, "EUR")
    batch = f"sandbox-{day.replace('-', '')}-EUR"
    rows = [f"sbx:{day}:capture:psp_{payment},{batch},capture,{payment},psp_{payment},,,EUR,{amount},{fee},"
            f"{amount - fee},{day}T10:00:00.000Z",
            f"sbx:{day}:payout:EUR,{batch},payout,,,,,EUR,{fee - amount},0,{fee - amount},{day}T23:59:59.999Z"]
    return ("\n".join([HEADER, *rows, f"# end lines={len(rows)}"]) + "\n").encode()


@pytest.fixture
def reconciler(app_settings: Settings) -> reconcile.Reconciler:
    s3 = client("s3", app_settings)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": app_settings.aws_region})
    return reconcile.bootstrap_reconciler(app_settings)


@pytest.fixture
def alerts(app_settings: Settings) -> Iterator[Any]:
    """A queue subscribed to the reconciliation topic: what was announced."""
    sqs, sns = client("sqs", app_settings), client("sns", app_settings)
    url = sqs.create_queue(QueueName="recon-alerts-tap")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn(sns, app_settings.recon_alerts_topic), Protocol="sqs", Endpoint=arn,
                  Attributes={"RawMessageDelivery": "true"})

    def received() -> list[dict[str, Any]]:
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        return [json.loads(m["Body"]) for m in answer.get("Messages", [])]
    yield received


def _s3_event(key: str) -> dict[str, Any]:
    return {"Records": [{"s3": {"bucket": {"name": BUCKET}, "object": {"key": key}}}]}


def test_a_file_in_the_bucket_is_imported_once_and_a_malformed_one_is_refused_and_announced(
        reconciler: reconcile.Reconciler, engine: Engine, alerts: Any) -> None:
    with engine.begin() as conn:
        payment = captured(conn, new_merchant(conn), 10_000)
    day = datetime.now(UTC).date().isoformat()
    s3 = reconciler.aws("s3")
    s3.put_object(Bucket=BUCKET, Key=f"settlements/sandbox/{day}.csv", Body=_feed(payment, 10_000, day))
    first = reconcile.handle(reconciler, _s3_event(f"settlements/sandbox/{day}.csv"))
    assert first == {"imported": [{"key": f"settlements/sandbox/{day}.csv", "new_lines": 2}]}
    again = reconcile.handle(reconciler, _s3_event(f"settlements/sandbox/{day}.csv"))
    assert again["imported"][0]["new_lines"] == 0
    s3.put_object(Bucket=BUCKET, Key="settlements/sandbox/bad.csv", Body=_feed(payment, 10_000, day)[:-20])
    refused = reconcile.handle(reconciler, _s3_event("settlements/sandbox/bad.csv"))
    assert refused["imported"][0]["new_lines"] is None
    (alert,) = alerts()
    assert alert["file"] == "settlements/sandbox/bad.csv" and "line" in alert["reason"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM settlement_lines")).scalar_one() == 2
    with pytest.raises(ValueError, match="not under settlements/"):
        reconcile.handle(reconciler, _s3_event("elsewhere/x.csv"))


def test_a_run_announces_the_discrepancies_it_opens_once(reconciler: reconcile.Reconciler, engine: Engine,
                                                        alerts: Any) -> None:
    with engine.begin() as conn:
        payment = captured(conn, new_merchant(conn), 7_000)
    later = dataclasses.replace(reconciler, now=lambda: datetime.now(UTC) + timedelta(days=2))
    first = reconcile.handle(later, {"action": "run", "schedule": "hourly"})
    assert first["runs"][0]["opened"] >= 1
    (alert,) = alerts()
    assert {"kind": "missing_from_settlement", "subject": f"capture:{payment}"} in [
        {k: o[k] for k in ("kind", "subject")} for o in alert["opened"]]
    second = reconcile.handle(later, {"action": "run", "schedule": "hourly"})
    assert second["runs"][0]["opened"] == 0 and alerts() == []
    assert reconcile.handle(later, {"action": "run", "schedule": "aged"}) == {"runs": []}  # no batch is 7+ days old
    with pytest.raises(ValueError, match="schedule must be"):
        reconcile.handle(later, {"action": "run", "schedule": "weekly"})
    with pytest.raises(ValueError, match="unknown event"):
        reconcile.handle(later, {"action": "dance"})


def test_closed_days_land_through_firehose_once(reconciler: reconcile.Reconciler, engine: Engine,
                                                app_settings: Settings) -> None:
    with engine.begin() as conn:
        captured(conn, new_merchant(conn), 5_000)
    firehose = reconciler.aws("firehose")
    firehose.create_delivery_stream(
        DeliveryStreamName="paysaga-ledger-landing-test", DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={"RoleARN": "arn:aws:iam::123456789012:role/firehose",
                                            "BucketARN": f"arn:aws:s3:::{BUCKET}", "Prefix": "ledger-entries/"})
    tomorrow = dataclasses.replace(
        reconciler, settings=app_settings.model_copy(update={"ledger_landing_stream": "paysaga-ledger-landing-test"}),
        now=lambda: datetime.now(UTC) + timedelta(days=1))
    landed = reconcile.handle(tomorrow, {"action": "land"})["landed"]
    today = datetime.now(UTC).date().isoformat()
    assert landed[today] >= 4  # the reservation's 2 entries and the post's 4 at least
    objects = reconciler.aws("s3").list_objects_v2(Bucket=BUCKET, Prefix="ledger-entries/").get("Contents", [])
    body = b"".join(reconciler.aws("s3").get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in objects)
    rows = [json.loads(line) for line in body.decode().splitlines() if line]
    assert len(rows) == landed[today] and {"entry_id", "account_kind", "created_at"} <= set(rows[0])
    assert reconcile.handle(tomorrow, {"action": "land"})["landed"] == {}  # landed days are not landed again
