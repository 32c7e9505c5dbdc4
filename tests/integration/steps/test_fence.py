"""The AuthorizeGateway fence against a real redis-server."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import pytest
import redis

from core import limits
from local.stack.process import free_port
from steps.fence import (
    FenceHeld,
    FenceUnavailable,
    authorize_fence,
    fence_client,
    fence_key,
)

THREADS = 20
WAIT_S = 10.0  # bound on every wait for another thread


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis[bytes]]:
    connection = fence_client(redis_url)
    yield connection
    connection.close()


def test_the_key_holds_our_token_with_the_ttl_and_is_released(client: redis.Redis[bytes]) -> None:
    with authorize_fence(client, "pay_1", ttl_ms=5_000) as fence:
        assert fence.key == "fence:authorize:pay_1" == fence_key("pay_1")
        assert client.get(fence.key) == fence.token.encode()
        assert 4_000 < client.pttl(fence.key) <= 5_000
    assert client.exists(fence.key) == 0
    assert (fence.released, fence.lost) == (True, False)
    with authorize_fence(client, "pay_1") as again:  # free again after release
        assert again.token != fence.token


def test_the_default_ttl_outlives_the_invocation_that_holds_it(client: redis.Redis[bytes]) -> None:
    """AuthorizeGateway passes no TTL: Redis must keep its fence past the step's own Lambda timeout (core/limits.py
    says why); the old 5 s was shorter than one gateway call."""
    with authorize_fence(client, "pay_default") as fence:
        left_ms = client.pttl(fence.key)
    assert fence.ttl_ms == limits.FENCE_TTL_MS
    assert limits.STEP_LAMBDA_TIMEOUT_S * 1_000 < left_ms <= limits.FENCE_TTL_MS


def test_a_held_fence_refuses_and_the_body_never_runs(client: redis.Redis[bytes]) -> None:
    ran = []
    with authorize_fence(client, "pay_2") as outer:
        with pytest.raises(FenceHeld), authorize_fence(client, "pay_2"):
            ran.append("inner")
        assert client.get(outer.key) == outer.token.encode()  # the refused attempt left ours alone
    assert ran == []


def test_the_fence_is_released_when_the_body_raises(client: redis.Redis[bytes]) -> None:
    with pytest.raises(RuntimeError, match="gateway exploded"), authorize_fence(client, "pay_3") as fence:
        raise RuntimeError("gateway exploded")
    assert client.exists(fence.key) == 0


def test_fences_of_different_payments_are_independent(client: redis.Redis[bytes]) -> None:
    with authorize_fence(client, "pay_a") as a, authorize_fence(client, "pay_b") as b:
        assert a.key != b.key


def test_exclusive_under_concurrent_threads(redis_url: str) -> None:
    """20 threads race for one payment's fence; the winner holds it until every loser has been refused."""
    barrier = threading.Barrier(THREADS)
    lock = threading.Lock()
    winners: list[str] = []
    refused: list[int] = []
    all_refused = threading.Event()
    errors: list[BaseException] = []

    def contend(index: int) -> None:
        connection = fence_client(redis_url)
        try:
            barrier.wait(timeout=WAIT_S)
            try:
                with authorize_fence(connection, "pay_race", ttl_ms=30_000) as fence:
                    with lock:
                        winners.append(fence.token)
                    # Hold the fence until all the others were refused; a second winner would wait here in vain.
                    assert all_refused.wait(timeout=WAIT_S), "not every other contender was refused"
            except FenceHeld:
                with lock:
                    refused.append(index)
                    if len(refused) == THREADS - 1:
                        all_refused.set()
        except BaseException as error:  # reported to the main thread below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=2 * WAIT_S)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert len(winners) == 1
    assert len(refused) == THREADS - 1


def test_release_after_expiry_never_deletes_the_next_holders_fence(client: redis.Redis[bytes]) -> None:
    with contextlib.ExitStack() as later:
        with authorize_fence(client, "pay_exp", ttl_ms=5_000) as first:
            # Our fence expires mid-body (forced, rather than sleeping past the TTL)...
            client.pexpire(first.key, 1)
            for _ in range(1_000):  # bounded wait on the condition "expired"
                if client.exists(first.key) == 0:
                    break
            assert client.exists(first.key) == 0
            # ...and another execution takes it, and still holds it when our body ends.
            second = later.enter_context(authorize_fence(client, "pay_exp", ttl_ms=5_000))
        assert (first.released, first.lost) == (False, True)
        assert client.get(first.key) == second.token.encode(), "our late release deleted someone else's fence"
    assert (second.released, second.lost) == (True, False)
    assert client.exists(first.key) == 0


def test_redis_down_is_unavailable_and_the_body_never_ran() -> None:
    dead = fence_client(f"redis://127.0.0.1:{free_port()}/0", socket_timeout_ms=200)
    ran = []
    with pytest.raises(FenceUnavailable, match="fence:authorize:pay_down"), authorize_fence(dead, "pay_down"):
        ran.append("body")
    assert ran == []
    dead.close()


def test_a_redis_that_never_answers_is_unavailable_within_the_socket_timeout() -> None:
    """A peer that accepts the connection but never replies: the bounded socket timeout turns it into
    FenceUnavailable instead of a hang."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # connections complete in the backlog; nobody ever reads or writes
        port = silent.getsockname()[1]
        mute = fence_client(f"redis://127.0.0.1:{port}/0", socket_timeout_ms=200)
        ran = []
        with pytest.raises(FenceUnavailable), authorize_fence(mute, "pay_mute"):
            ran.append("body")
        mute.close()
    assert ran == []


def test_a_non_positive_ttl_is_refused(client: redis.Redis[bytes]) -> None:
    with pytest.raises(ValueError, match="ttl_ms"), authorize_fence(client, "pay_t", ttl_ms=0):
        pass
