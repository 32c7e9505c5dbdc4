"""The local notification worker killed with SIGKILL mid-batch loses nothing: restarted, it delivers every event to
every target; what it delivered twice carries the same id and the same bytes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import text

from core.aws import client
from core.aws_resources import queue_url
from core.db import engine
from core.settings import Settings
from saga.notifications.consumer import targets_for
from saga.notifications.webhooks import create_endpoint
from store.outbox import event_message
from tests.integration.saga.notifications.support import drain, outbox_event, sink_queue

EVENTS = 60


def _start(log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        return subprocess.Popen([sys.executable, "-m", "local.notification_worker", "--relay-every-ms", "3600000",
                                 "--deliver-every-ms", "3600000", "--retry-after-s", "1"],
                                stdout=handle, stderr=handle, env=dict(os.environ), start_new_session=True)


def _stop(process: subprocess.Popen[bytes], sig: int) -> None:
    if process.poll() is None:
        os.kill(process.pid, sig)
    process.wait(timeout=20)


def test_a_worker_killed_mid_batch_loses_nothing(app_settings: Settings, tmp_path: Path) -> None:
    sqs, targets = client("sqs", app_settings), targets_for(app_settings)
    queue = queue_url(sqs, app_settings.notifications_queue)
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"VisibilityTimeout": "3"})  # in flight comes back soon
    tap, arn = sink_queue(sqs, "tap-crash")
    targets.sns.subscribe(TopicArn=targets.topic_arn, Protocol="sqs", Endpoint=arn,
                          Attributes={"RawMessageDelivery": "true"})
    events = [outbox_event(engine(app_settings)) for _ in range(EVENTS)]
    with engine(app_settings).begin() as conn:
        for event in events:
            create_endpoint(conn, merchant_id=event.payload["merchant_id"], url="http://127.0.0.1:9/hook",
                            allow_loopback=True)
    for event in events:  # two payments per message group: order within a group matters
        sqs.send_message(QueueUrl=queue, MessageBody=event_message(event), MessageGroupId=str(events.index(event) // 2),
                         MessageDeduplicationId=event.id)

    log = tmp_path / "worker.log"
    first = _start(log)
    seen: list[str] = []
    deadline = time.monotonic() + 60
    while len(seen) < 5:  # killed once some are delivered, others still in the queue or in flight
        assert time.monotonic() < deadline, log.read_text()
        seen += drain(sqs, tap, expect=1, timeout_s=0.2, settle_s=0)
    _stop(first, signal.SIGKILL)
    assert len(seen) < EVENTS, "the worker finished before it could be killed mid-batch"

    second = _start(log)
    try:
        deadline = time.monotonic() + 90
        while {json.loads(b)["id"] for b in seen} != {e.id for e in events}:
            assert time.monotonic() < deadline, log.read_text()
            seen += drain(sqs, tap, expect=1, timeout_s=0.5, settle_s=0)
    finally:
        _stop(second, signal.SIGTERM)

    by_id = {e.id: event_message(e) for e in events}
    assert all(body == by_id[json.loads(body)["id"]] for body in seen), "a duplicate must be the same bytes"
    with engine(app_settings).connect() as conn:
        deliveries = conn.execute(text("SELECT event_id, count(*) FROM webhook_deliveries GROUP BY event_id")).all()
    assert {row[0]: row[1] for row in deliveries} == {e.id: 1 for e in events}  # one per endpoint, never two
    remaining = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])["Attributes"]
    assert remaining["ApproximateNumberOfMessages"] == "0", remaining


