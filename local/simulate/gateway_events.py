"""Gateway webhooks in the simulation, for a seed whose merchant pays through Stripe or Adyen.

After the seed's payments have ended:
- chargebacks: some succeeded payments are disputed; the dispute's opening and (maybe) its decision are sent as the
  gateway would sign them, in random order, each possibly twice;
- redelivery: every notice the gateway itself sent about the seed's payments (authorisations, captures, ...) is sent
  again, shuffled.

What they must leave is checked by `local.simulate.checks` (property 13): each event stored once, a dispute opened
once and decided at most once with its ledger movement once, the books balanced, and a redelivery changing nothing.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from ulid import ULID

from local.adyen.notifications import notification_item, signed_notification
from local.simulate.world import Backends
from local.stripe.signing import sign

DISPUTED_SHARE = 0.35  # of the succeeded payments
DUPLICATE_SHARE = 0.3  # of the events sent
REDELIVERED_SHARE = 0.6  # of the notices stored


@dataclass(frozen=True)
class SentDispute:
    payment_id: int
    reference: str
    decision: str | None  # "won", "lost" or None (still open)


@dataclass(frozen=True)
class Snapshot:
    notices: dict[str, tuple[Any, Any]]  # event id -> (applied_at, payment_id)
    ledger_transactions: int

    def changed_by(self, later: Snapshot) -> list[str]:
        """What `later` changed of this: notices altered or lost, a ledger transaction added or gone."""
        changes = [f"notice {e} {v} -> {later.notices.get(e)}" for e, v in self.notices.items()
                   if later.notices.get(e) != v]
        if later.ledger_transactions != self.ledger_transactions:
            changes.append(f"ledger transactions {self.ledger_transactions} -> {later.ledger_transactions}")
        return changes


@dataclass
class EventsReport:
    disputes: list[SentDispute] = field(default_factory=list)
    sent: int = 0
    refused: list[str] = field(default_factory=list)  # answers other than 200: each is a violation
    redelivered: int = 0
    # What a redelivery must not change: each stored notice's (applied_at, payment) and the payments' ledger
    # transactions (a gateway's own first delivery that happens to arrive meanwhile only adds a notice).
    before_redelivery: Snapshot = field(default_factory=lambda: Snapshot({}, 0))
    after_redelivery: Snapshot = field(default_factory=lambda: Snapshot({}, 0))


class GatewayEvents:
    def __init__(self, backends: Backends, gateway: str, rng: random.Random) -> None:
        assert gateway in ("stripe", "adyen"), "the sandbox sends no webhooks"
        self.backends = backends
        self.gateway = gateway
        self.rng = rng
        self.report = EventsReport()

    # -- sending -------------------------------------------------------------------------------------------------

    def _post(self, body: bytes, headers: dict[str, str]) -> None:
        response = self.backends.http.post(f"{self.backends.api_url}/v1/webhooks/{self.gateway}", content=body,
                                           headers={"Content-Type": "application/json", **headers})
        self.report.sent += 1
        if response.status_code != 200:
            self.report.refused.append(f"{response.status_code} {response.text[:200]}")

    def _send_stripe(self, event: dict[str, Any]) -> None:
        secret = self.backends.settings.stripe_webhook_secret
        assert secret is not None, "the local stack sets STRIPE_WEBHOOK_SECRET"
        body = json.dumps(event).encode()  # Stripe signs each delivery anew
        self._post(body, {"Stripe-Signature": sign(body, secret.get_secret_value(), int(time.time()))})

    def _send_adyen_item(self, item: dict[str, Any]) -> None:
        key = self.backends.settings.adyen_hmac_key
        assert key is not None, "the local stack sets ADYEN_HMAC_KEY"
        self._post(json.dumps(signed_notification(item, key.get_secret_value())).encode(), {})

    # -- chargebacks -----------------------------------------------------------------------------------------------

    def chargebacks(self, payment_ids: list[int]) -> None:
        with self.backends.engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT id, gateway_reference, captured_amount_minor, currency FROM payments"
                " WHERE id = ANY(:ids) AND status = 'succeeded' ORDER BY id"), {"ids": payment_ids}).all()
        deliveries: list[dict[str, Any]] = []
        for row in rows:
            if self.rng.random() >= DISPUTED_SHARE:
                continue
            decisions: tuple[str | None, ...] = (None, "won", "lost") if self.gateway == "stripe" else (None, "won")
            decision = self.rng.choice(decisions)
            dispute = SentDispute(int(row.id), self._reference(), decision)
            self.report.disputes.append(dispute)
            events = [self._event(row, dispute, None)]
            if decision is not None:
                events.append(self._event(row, dispute, decision))
            deliveries += events + [e for e in events if self.rng.random() < DUPLICATE_SHARE]
        self.rng.shuffle(deliveries)  # a decision may come before its opening
        for delivery in deliveries:
            self._deliver(delivery)

    def _reference(self) -> str:
        return f"dp_{ULID()}" if self.gateway == "stripe" else f"CB{ULID().hex[-14:].upper()}"  # the random part

    def _event(self, row: Any, dispute: SentDispute, decision: str | None) -> dict[str, Any]:
        amount, currency = int(row.captured_amount_minor), str(row.currency)
        if self.gateway == "stripe":
            status = decision or "needs_response"
            return {"id": f"evt_{ULID()}", "object": "event", "created": int(time.time()), "livemode": False,
                    "type": "charge.dispute.closed" if decision else "charge.dispute.created",
                    "data": {"object": {"id": dispute.reference, "object": "dispute", "amount": amount,
                                        "currency": currency.lower(), "payment_intent": row.gateway_reference,
                                        "reason": "fraudulent", "status": status}}}
        merchant_account = self.backends.settings.adyen_merchant_account
        assert merchant_account is not None
        return notification_item(
            event_code="CHARGEBACK_REVERSED" if decision == "won" else "CHARGEBACK",
            psp_reference=dispute.reference, merchant_reference=str(row.id), merchant_account=merchant_account,
            amount_minor=amount, currency=currency, success=True, at_ms=int(time.time() * 1000),
            original_reference=row.gateway_reference, reason="Fraud")

    def _deliver(self, delivery: dict[str, Any]) -> None:
        if self.gateway == "stripe":
            self._send_stripe(delivery)
        else:
            self._send_adyen_item(delivery)

    # -- redelivery ------------------------------------------------------------------------------------------------

    def _snapshot(self, payment_ids: list[int]) -> Snapshot:
        with self.backends.engine.connect() as conn:
            notices = {str(r.event_id): (r.applied_at, r.payment_id) for r in conn.execute(text(
                "SELECT event_id, applied_at, payment_id FROM gateway_notices"
                " WHERE gateway = :g AND payment_id = ANY(:ids)"), {"g": self.gateway, "ids": payment_ids})}
            transactions = conn.execute(text("SELECT count(*) FROM ledger_transactions WHERE payment_id = ANY(:ids)"),
                                        {"ids": payment_ids}).scalar_one()
        return Snapshot(notices, int(transactions))

    def redeliver(self, payment_ids: list[int]) -> None:
        """Send again, shuffled, a share of every notice stored about these payments (the gateway's own and the
        chargebacks above): nothing may change."""
        with self.backends.engine.connect() as conn:
            payloads = [row.payload for row in conn.execute(text(
                "SELECT payload FROM gateway_notices WHERE gateway = :g AND payment_id = ANY(:ids)"
                " ORDER BY received_at"), {"g": self.gateway, "ids": payment_ids})]
        chosen = [p for p in payloads if self.rng.random() < REDELIVERED_SHARE]
        self.rng.shuffle(chosen)
        self.report.before_redelivery = self._snapshot(payment_ids)
        for payload in chosen:
            self._deliver(payload)
        self.report.redelivered = len(chosen)
        self.report.after_redelivery = self._snapshot(payment_ids)
