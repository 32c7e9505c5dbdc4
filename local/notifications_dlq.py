"""The notifications DLQ, seen and redriven (`paysaga events dlq list | redrive`).

`peek` lists without deleting: it receives page by page (each page hidden for a moment so the next receive returns
the following messages), then makes every message it saw visible again at once. `redrive` moves each message back to
the notifications queue: receive from the DLQ, send to the queue (same body, same message group; deduplication id
`redrive-<DLQ message id>`, so a redrive that died between its send and its delete and is run again within SQS's
5-minute window sends nothing twice), then delete from the DLQ. moto has no StartMessageMoveTask; receive, send,
delete works against both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from core.aws_resources import queue_url
from core.settings import Settings

_HIDE_S = 30  # how long a peeked page stays hidden while the next pages are read
MAX_MESSAGES = 1_000  # one command looks at this many at most


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    receives: int
    event_id: str | None
    event_type: str | None
    payment_id: str | None
    body: str


def _read(message: dict[str, Any]) -> DeadLetter:
    body = str(message["Body"])
    event: dict[str, Any] = {}
    try:
        parsed = json.loads(body)
        event = parsed if isinstance(parsed, dict) else {}
    except ValueError:
        pass
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    assert isinstance(data, dict)
    return DeadLetter(message_id=str(message["MessageId"]),
                      receives=int(message.get("Attributes", {}).get("ApproximateReceiveCount", 0)),
                      event_id=_text(event.get("id")), event_type=_text(event.get("type")),
                      payment_id=_text(data.get("payment_id")), body=body)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _receive(sqs: Any, url: str, hide_s: int) -> list[dict[str, Any]]:
    answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=hide_s,
                                 AttributeNames=["All"])
    return list(answer.get("Messages", []))


def peek(sqs: Any, settings: Settings, *, limit: int = MAX_MESSAGES) -> list[DeadLetter]:
    """The messages in the DLQ, left there."""
    url = queue_url(sqs, settings.notifications_dlq)
    seen: list[dict[str, Any]] = []
    try:
        while len(seen) < limit:
            page = _receive(sqs, url, _HIDE_S)
            if not page:
                break
            seen.extend(page)
    finally:
        for message in seen:  # visible again at once: a peek leaves the DLQ as it found it
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return [_read(m) for m in seen]


def redrive(sqs: Any, settings: Settings, *, limit: int = MAX_MESSAGES) -> list[DeadLetter]:
    """Move the DLQ's messages back to the notifications queue; the ones moved."""
    dlq = queue_url(sqs, settings.notifications_dlq)
    queue = queue_url(sqs, settings.notifications_queue)
    moved: list[DeadLetter] = []
    while len(moved) < limit:
        page = _receive(sqs, dlq, _HIDE_S)
        if not page:
            break
        for message in page:
            group = str(message.get("Attributes", {}).get("MessageGroupId") or "redrive")
            sqs.send_message(QueueUrl=queue, MessageBody=message["Body"], MessageGroupId=group,
                             MessageDeduplicationId=f"redrive-{message['MessageId']}")
            sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
            moved.append(_read(message))
    return moved
