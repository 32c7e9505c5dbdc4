"""What a step needs from the outside world, made once per process (a Lambda container, the local API server)."""

from __future__ import annotations

import functools
from typing import Any

import redis
from sqlalchemy import Engine

from core.aws import client
from core.aws_resources import queue_url
from core.db import engine as db_engine
from core.settings import Settings, settings
from steps.fence import fence_client
from steps.gateway.factory import gateway_for
from steps.gateway.notices import notice_reader
from steps.gateway.port import Gateway
from steps.gateway.traced import traced
from store.payments import Payment


def current() -> Settings:
    return settings()


def engine() -> Engine:
    return db_engine(current())


# Each is made once per settings object (frozen, hashable): one per process in Lambda, one per test in the suite.
@functools.cache
def _gateway(now: Settings, name: str) -> Gateway:
    return traced(gateway_for(name, now, timeout_ms=now.gateway_timeout_ms, notices=notice_reader(db_engine(now))))


def gateway(payment: Payment) -> Gateway:
    """The adapter of the gateway the payment recorded at start (its merchant's)."""
    now = current()
    return _gateway(now, payment.gateway or now.gateway)


@functools.cache
def _redis(url: str) -> redis.Redis[bytes]:
    return fence_client(url)


def fence_redis() -> redis.Redis[bytes]:
    return _redis(current().redis_url)


@functools.cache
def _sqs(now: Settings) -> Any:
    return client("sqs", now)


def sqs() -> Any:
    return _sqs(current())


@functools.cache
def _queue_url(now: Settings) -> str:
    return queue_url(_sqs(now), now.notifications_queue)


def notifications_queue_url() -> str:
    return _queue_url(current())
