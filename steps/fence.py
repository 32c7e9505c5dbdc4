"""The fence around AuthorizeGateway (DESIGN 6): at most one holder per payment calls the gateway at a time.

``SET fence:authorize:{payment_id} <token> NX PX <ttl_ms>``, released by compare-and-delete Lua: exactly what
redis-py's ``redis.lock.Lock`` does, so it is used rather than rewritten. The context manager takes the fence
BEFORE its body runs and raises instead of running the body when it cannot:

    with authorize_fence(client, payment_id) as fence:   # FenceHeld / FenceUnavailable: body not run
        gateway.authorize(...)

Release deletes the key only while it still holds our token: if our fence expired during the body and someone
else took it, theirs stays. That case is reported on the handle (``fence.lost``), not raised, because the body's
effect already happened and the gateway idempotency key (the second net) keeps it single.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.exceptions import LockNotOwnedError
from redis.exceptions import RedisError as _RedisError
from redis.lock import Lock
from redis.retry import Retry

from core import limits
from core.observability import subsegment

# The TTL outlives the whole fenced section (authorize at the gateway timeout, the unknown-outcome lookup, the write
# that records the result) and the AuthorizeGateway invocation itself: core/limits.py asserts both.
DEFAULT_TTL_MS = limits.FENCE_TTL_MS
DEFAULT_SOCKET_TIMEOUT_MS = limits.FENCE_SOCKET_TIMEOUT_MS
# One reconnect on a dropped connection; more would stretch the bound on a dead Redis.
FENCE_RETRIES = limits.FENCE_REDIS_RETRIES

# The X-Ray subsegment of each Redis call (aws-xray-sdk has no Redis patcher): Redis's node on the service map.
REDIS_SUBSEGMENT = "Redis"

_log = logging.getLogger(__name__)


class FenceError(Exception):
    """The fence could not be taken; the body did not run. Transient: the step is retried."""


class FenceHeld(FenceError):
    """Someone else holds the fence for this payment."""


class FenceUnavailable(FenceError):
    """Redis could not be reached (within the client's bounded socket timeouts)."""


@dataclass
class Fence:
    """A taken fence. After the ``with`` block, ``released`` says whether our key was deleted by us and ``lost``
    whether it had already expired (and maybe been taken by someone else) when we came to release it."""

    key: str
    token: str
    ttl_ms: int
    released: bool = False
    lost: bool = False


def fence_client(redis_url: str, *, socket_timeout_ms: int = DEFAULT_SOCKET_TIMEOUT_MS) -> redis.Redis[bytes]:
    """A Redis client whose every wait is bounded: connect and read timeouts, one retry without backoff."""
    timeout_s = socket_timeout_ms / 1000
    return redis.Redis.from_url(
        redis_url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), FENCE_RETRIES),
    )


def fence_key(payment_id: str) -> str:
    return f"fence:authorize:{payment_id}"


@contextmanager
def fence(client: redis.Redis[Any], key: str, *, ttl_ms: int = DEFAULT_TTL_MS) -> Iterator[Fence]:
    """Hold ``key`` for at most ``ttl_ms`` around the body; raise FenceHeld/FenceUnavailable before it runs."""
    if ttl_ms <= 0:
        raise ValueError("ttl_ms must be positive")
    # Lock converts seconds back to milliseconds with int(); a rounding error there could shave a millisecond.
    lock = Lock(client, key, timeout=ttl_ms / 1000, blocking=False, thread_local=False)
    token = uuid.uuid4().hex
    try:
        with subsegment(REDIS_SUBSEGMENT, operation="fence.acquire"):
            taken = lock.acquire(blocking=False, token=token)
    except _RedisError as down:
        raise FenceUnavailable(f"cannot reach Redis to take {key}: {down}") from down
    if not taken:
        raise FenceHeld(f"{key} is held by another execution")
    handle = Fence(key=key, token=token, ttl_ms=ttl_ms)
    try:
        yield handle
    finally:
        _release(lock, handle)


def authorize_fence(
    client: redis.Redis[Any], payment_id: str, *, ttl_ms: int = DEFAULT_TTL_MS
) -> AbstractContextManager[Fence]:
    """The fence around AuthorizeGateway for ``payment_id`` (key ``fence:authorize:{payment_id}``)."""
    return fence(client, fence_key(payment_id), ttl_ms=ttl_ms)


def _release(lock: Lock, handle: Fence) -> None:
    try:
        with subsegment(REDIS_SUBSEGMENT, operation="fence.release"):
            lock.release()  # Lua: delete only if the key still holds our token
    except LockNotOwnedError:
        handle.lost = True
        _log.warning("fence %s expired before release; left whatever holds it now untouched", handle.key)
    except _RedisError as down:
        # The TTL frees it anyway; the body's outcome matters more than a tidy release.
        _log.warning("could not release fence %s (%s); it expires within %d ms", handle.key, down, handle.ttl_ms)
    else:
        handle.released = True
