"""What the notifications consumer puts on the event bus, and the rules of seed 001 that match it, written once.

The consumer (saga/notifications/consumer.py) puts every outbox event with these names; the CDK app can create the
rules from `RULES` (this module imports only the standard library, like core.limits: infra may read it). Each pattern
is checked against the events we put with EventBridge's TestEventPattern (tests/integration/saga/notifications).

Every entry's Detail is the event's one JSON form (store.outbox.event_message): {"id", "type", "created_at", "data"}.
EventBridge delivers at least once and the consumer retries a record until every target took it, so a rule's target
may see one event twice: targets dedupe on (detail-type, detail.id).
"""

from __future__ import annotations

from typing import Any, Final

SOURCE: Final[str] = "paysaga.payments"

PAYMENT_SUCCEEDED: Final[str] = "payment.succeeded"
PAYMENT_FAILED: Final[str] = "payment.failed"
# Put beside the payment's own event when its fraud score is in the review band or above: the detail is that event's,
# with `data.fraud_score` added and `type` left as the event's own type.
PAYMENT_HIGH_RISK: Final[str] = "payment.high_risk"

# The fraud score from which a payment is high risk: steps.fraud.REVIEW_AT (a test keeps the two equal; core cannot
# import steps).
HIGH_RISK_SCORE: Final[int] = 50

# Seed 001's rules, by name: the EventPattern of each (JSON-ready).
RULES: Final[dict[str, dict[str, Any]]] = {
    # Send the customer a confirmation.
    "send-confirmation": {"source": [SOURCE], "detail-type": [PAYMENT_SUCCEEDED]},
    # Retry a payment that failed for a reason that was not the card's (our backends or the gateway were down).
    "retry-failed": {"source": [SOURCE], "detail-type": [PAYMENT_FAILED], "detail": {"data": {"retryable": [True]}}},
    # Manual review of a high-risk payment.
    "manual-review": {"source": [SOURCE], "detail-type": [PAYMENT_HIGH_RISK],
                      "detail": {"data": {"fraud_score": [{"numeric": [">=", HIGH_RISK_SCORE]}]}}},
}
