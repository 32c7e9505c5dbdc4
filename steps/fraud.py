"""The fraud score of a payment, from its own history in PostgreSQL. Integers 0..100; rules, not a model.

| signal | points |
|---|---|
| more than 3 payments of this customer in 5 minutes (velocity) | 15 per payment above 3, at most 45 |
| more than 20 payments of this customer in 24 hours | 20 |
| amount at least 5x the customer's average of earlier payments (at least 3 earlier) | 35 (10x: 50) |
| card testing: 5+ payments under 500 minor units with one token in 10 minutes | 60 |
| a device id (metadata `device_id`) this customer never used before, on a customer with history | 15 |
| a country (metadata `ip_country`) this customer never paid from before, on a customer with history | 10 |

A score at or above REJECT_AT fails the payment with FraudRejected; from REVIEW_AT it is held for review (nothing is
captured).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from store.payments import Payment

REJECT_AT = 80
REVIEW_AT = 50
SMALL_AMOUNT_MINOR = 500


@dataclass(frozen=True)
class FraudAssessment:
    score: int
    reasons: tuple[str, ...]

    @property
    def decision(self) -> str:
        return decision_for(self.score)


def decision_for(score: int) -> str:
    if score >= REJECT_AT:
        return "reject"
    if score >= REVIEW_AT:
        return "review"
    return "accept"


_HISTORY = text("""
SELECT
  count(*) FILTER (WHERE p.created_at > :at - interval '5 minutes')               AS last_5m,
  count(*) FILTER (WHERE p.created_at > :at - interval '24 hours')                AS last_24h,
  count(*)                                                                         AS earlier,
  coalesce(avg(p.amount_minor) FILTER (WHERE p.currency = :currency), 0)::bigint   AS average_minor,
  count(*) FILTER (WHERE p.created_at > :at - interval '10 minutes'
                     AND p.payment_method_token = :token
                     AND p.amount_minor < :small)                                  AS small_same_token,
  count(*) FILTER (WHERE p.metadata ->> 'device_id' = :device)                     AS device_seen,
  count(*) FILTER (WHERE p.metadata ->> 'ip_country' = :country)                   AS country_seen
FROM payments p
WHERE p.merchant_id = :merchant AND p.customer_ref = :customer AND p.id <> :id AND p.created_at <= :at
""")


def assess(conn: Connection, payment: Payment) -> FraudAssessment:
    row = conn.execute(_HISTORY, {
        "at": payment.created_at, "currency": payment.currency, "token": payment.payment_method_token,
        "small": SMALL_AMOUNT_MINOR, "device": payment.metadata.get("device_id"),
        "country": payment.metadata.get("ip_country"), "merchant": payment.merchant_id,
        "customer": payment.customer_ref, "id": payment.id,
    }).one()
    score = 0
    reasons: list[str] = []
    if row.last_5m > 3:
        score += min(45, 15 * (row.last_5m - 3))
        reasons.append(f"velocity: {row.last_5m} payments in 5 minutes")
    if row.last_24h > 20:
        score += 20
        reasons.append(f"velocity: {row.last_24h} payments in 24 hours")
    if row.earlier >= 3 and row.average_minor > 0:
        if payment.amount_minor >= 10 * row.average_minor:
            score += 50
            reasons.append("amount at least 10x the customer's average")
        elif payment.amount_minor >= 5 * row.average_minor:
            score += 35
            reasons.append("amount at least 5x the customer's average")
    if payment.amount_minor < SMALL_AMOUNT_MINOR and row.small_same_token >= 4:
        score += 60
        reasons.append(f"card testing: {row.small_same_token + 1} small payments with one token in 10 minutes")
    if row.earlier > 0 and "device_id" in payment.metadata and row.device_seen == 0:
        score += 15
        reasons.append("new device for this customer")
    if row.earlier > 0 and "ip_country" in payment.metadata and row.country_seen == 0:
        score += 10
        reasons.append("new country for this customer")
    return FraudAssessment(min(score, 100), tuple(reasons))
