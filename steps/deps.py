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
from steps.gateway.port import Gateway


def current() -> Settings:
    return settings()


def engine() -> Engine:
    return db_engine(current())


@functools.cache
def _gateway(name: str, base_url: str | None, timeout_ms: int, _settings: Settings) -> Gateway:
    return gateway_for(name, _settings, timeout_ms=timeout_ms)


def gateway() -> Gateway:
    now = current()
    return _gateway(now.gateway, now.sandbox_gateway_url, now.gateway_timeout_ms, now)


@functools.cache
def _redis(url: str) -> redis.Redis[bytes]:
    return fence_client(url)


def fence_redis() -> redis.Redis[bytes]:
    return _redis(current().redis_url)


@functools.cache
def _sqs(endpoint: str | None, region: str, _settings: Settings) -> Any:
    return client("sqs", _settings)


def sqs() -> Any:
    now = current()
    return _sqs(now.aws_endpoint_url, now.aws_region, now)


@functools.cache
def _queue_url(endpoint: str | None, name: str) -> str:
    return queue_url(sqs(), name)


def notifications_queue_url() -> str:
    now = current()
    return _queue_url(now.aws_endpoint_url, now.notifications_queue)
