"""Notifications (DESIGN 8): the outbox relay, the notifications-queue consumer and its targets (SNS, EventBridge,
merchant webhooks)."""
