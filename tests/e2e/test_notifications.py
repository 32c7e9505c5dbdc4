"""Notifications through the whole local stack: its notification worker fans each event out (read here from a queue
on the SNS topic); a failed payment is announced by the outbox relay (`paysaga events relay`); `paysaga events dlq
list | redrive` shows a dead letter and brings it back to the queue, where the worker delivers it again, with the
same id and bytes."""

from __future__ import annotations

import json

from local.testing.live import LiveStack
from tests.e2e.saga_support import pay


def test_a_dead_letter_is_listed_then_redriven_and_delivered_again(live: LiveStack) -> None:
    _, api_key = live.new_merchant()
    response = pay(live, api_key)
    assert response.status_code == 201, response.text
    payment_id = response.json()["id"]
    [first] = live.notifications(payment_id)

    # The event's message, as if the consumer had given up on it: in the DLQ.
    sqs = live.sqs()
    dlq = sqs.get_queue_url(QueueName="paysaga-notifications-dlq.fifo")["QueueUrl"]
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(first, sort_keys=True, separators=(",", ":")),
                     MessageGroupId=payment_id, MessageDeduplicationId=f"dead-{first['id']}")

    listed = live.cli("events", "dlq", "list")
    assert listed.returncode == 0, listed.stderr + listed.stdout
    assert first["id"] in listed.stdout and "payment.succeeded" in listed.stdout and payment_id in listed.stdout
    assert first["id"] in live.cli("events", "dlq", "list").stdout  # listing leaves it there

    redriven = live.cli("events", "dlq", "redrive")
    assert redriven.returncode == 0, redriven.stderr + redriven.stdout
    assert first["id"] in redriven.stdout
    assert first["id"] not in live.cli("events", "dlq", "list").stdout

    again = live.notifications(payment_id, count=2)
    assert again == [first, first]  # delivered again: the same id, the same bytes


def test_a_failed_payment_is_announced_by_the_relay_with_its_error(live: LiveStack) -> None:
    _, api_key = live.new_merchant()
    response = pay(live, api_key, token="tok_decline")
    assert response.status_code == 402, response.text
    payment_id = response.json()["payment"]["id"]

    relayed = live.cli("events", "relay", "--grace-ms", "0")  # NotifyMerchant is not on this path: the relay is
    assert relayed.returncode == 0, relayed.stderr + relayed.stdout
    [event] = live.notifications(payment_id)
    assert event["type"] == "payment.failed"
    assert (event["data"]["error"], event["data"]["retryable"]) == ("PaymentDeclined", False)
