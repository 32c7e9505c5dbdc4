"""Seed 001's EventBridge rules (core.event_rules.RULES) match the events the consumer puts, and only those: each
pattern is a real rule on the emulator's bus (moto's server answers TestEventPattern with nothing, so the rules
themselves are the check), with an SQS target, and the very entries `consumer.entries` makes are put on the bus."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core import event_rules
from core.aws import client
from core.db import engine
from core.settings import Settings
from saga.notifications.consumer import entries
from steps.errors import RETRYABLE_FAILURES
from steps.fraud import REVIEW_AT
from tests.integration.saga.notifications.support import drain, outbox_event, parsed, sink_queue


def _rules(events: Any, sqs: Any, bus: str) -> dict[str, str]:
    """Every rule of seed 001 on the bus, each sending what it matches to a queue of its own: name -> queue URL."""
    urls = {}
    for name, pattern in event_rules.RULES.items():
        url, arn = sink_queue(sqs, f"rule-{name}")
        events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))
        events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "sink", "Arn": arn}])
        urls[name] = url
    return urls


def test_the_high_risk_score_is_the_fraud_review_threshold() -> None:
    assert event_rules.HIGH_RISK_SCORE == REVIEW_AT
    assert {"ServiceUnavailable", "GatewayUnavailable"} == RETRYABLE_FAILURES


@pytest.mark.parametrize(("event_type", "data", "score", "expected"), [
    ("payment.succeeded", {}, 10, {"send-confirmation": ["payment.succeeded"]}),
    ("payment.succeeded", {}, None, {"send-confirmation": ["payment.succeeded"]}),
    ("payment.succeeded", {}, 65, {"send-confirmation": ["payment.succeeded"], "manual-review": ["payment.high_risk"]}),
    ("payment.review", {}, 55, {"manual-review": ["payment.high_risk"]}),
    ("payment.failed", {"error": "GatewayUnavailable", "retryable": True}, 10, {"retry-failed": ["payment.failed"]}),
    ("payment.failed", {"error": "PaymentDeclined", "retryable": False}, 10, {}),
    ("payment.failed", {"error": "FraudRejected", "retryable": False}, 90, {"manual-review": ["payment.high_risk"]}),
    ("payment.disputed", {}, 65, {}),  # not an outcome: no high-risk announcement, and no rule of seed 001 wants it
])
def test_each_rule_matches_the_events_we_put(app_settings: Settings, event_type: str, data: dict[str, Any],
                                             score: int | None, expected: dict[str, list[str]]) -> None:
    event = outbox_event(engine(app_settings), event_type=event_type, fraud_score=score, **data)
    events, sqs = client("events", app_settings), client("sqs", app_settings)
    queues = _rules(events, sqs, app_settings.event_bus)

    answer = events.put_events(Entries=entries(event, score, app_settings.event_bus))
    assert answer["FailedEntryCount"] == 0

    matched = {}
    for name, url in queues.items():
        got = parsed(drain(sqs, url, expect=len(expected.get(name, [])) or 1, timeout_s=2 if name in expected else 0.5))
        if got:
            matched[name] = [g["detail-type"] for g in got]
            assert {g["detail"]["id"] for g in got} == {event.id}
    assert matched == expected
