"""Physical resource names. They equal core.settings' defaults, so code that looks a queue or topic up by name
finds the deployed one; the functions also receive every name explicitly in their environment."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ResourceNames:
    prefix: str

    @property
    def idempotency_table(self) -> str:
        return f"{self.prefix}-idempotency"

    @property
    def worker_slots_table(self) -> str:
        return f"{self.prefix}-worker-slots"

    @property
    def notifications_queue(self) -> str:
        return f"{self.prefix}-notifications.fifo"

    @property
    def notifications_dlq(self) -> str:
        return f"{self.prefix}-notifications-dlq.fifo"

    @property
    def notifications_topic(self) -> str:
        return f"{self.prefix}-payment-events"

    @property
    def event_bus(self) -> str:
        return f"{self.prefix}-payments"

    @property
    def state_machine(self) -> str:
        return f"{self.prefix}-payment-saga"

    @property
    def start_function(self) -> str:
        return f"{self.prefix}-StartPayment"

    @property
    def webhook_function(self) -> str:
        return f"{self.prefix}-GatewayWebhooks"

    @property
    def sync_function(self) -> str:
        return f"{self.prefix}-PaymentSync"

    @property
    def gateway_secret(self) -> str:
        return f"{self.prefix}/gateways"

    @property
    def alarm_topic(self) -> str:
        return f"{self.prefix}-alarms"
