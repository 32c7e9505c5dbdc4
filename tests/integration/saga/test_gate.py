"""The idempotency gate against the real moto server, with a stepped clock."""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from core.aws import client
from core.settings import Settings
from saga.idempotency import (
    COMPLETED,
    IN_PROGRESS,
    RECORD_TTL_S,
    Decision,
    IdempotencyGate,
    InFlight,
    InvalidIdempotencyKeyError,
    Mismatch,
    NotHolderError,
    Replay,
    Resumed,
    Started,
    StoredResponse,
    fingerprint,
    record_key,
)

T0_MS = 1_790_000_000_000
IN_PROGRESS_TTL_MS = 1_000
MERCHANT = "merchant-a"
KEY = "order-1234-attempt"
BODY = {"amount_minor": 1999, "currency": "EUR", "customer": "c-1"}
RESPONSE = StoredResponse(
    status_code=201,
    headers=(("Content-Type", "application/json"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")),
    body=b'{"payment_id": "1",  "note": "caf\xc3\xa9"}\n\x00\xff',  # odd spacing and non-UTF-8 bytes on purpose
)


class SteppedClock:
    def __init__(self) -> None:
        self.now_ms = T0_MS

    def __call__(self) -> int:
        return self.now_ms


class PaymentIds:
    """Hands out 1, 2, 3, ... like a Snowflake generator would hand out fresh ids; thread-safe."""

    def __init__(self) -> None:
        self._next = itertools.count(1)
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            return next(self._next)


@pytest.fixture
def clock() -> SteppedClock:
    return SteppedClock()


@pytest.fixture
def ddb(dynamo_settings: Settings) -> Any:
    return client("dynamodb", dynamo_settings)


@pytest.fixture
def gate(dynamo_settings: Settings, ddb: Any, clock: SteppedClock) -> IdempotencyGate:
    return IdempotencyGate(ddb, dynamo_settings.idempotency_table, in_progress_ttl_ms=IN_PROGRESS_TTL_MS,
                           clock_ms=clock)


def stored(ddb: Any, settings: Settings, merchant: str = MERCHANT, key: str = KEY) -> dict[str, Any] | None:
    item: dict[str, Any] | None = ddb.get_item(
        TableName=settings.idempotency_table, Key={"pk": {"S": record_key(merchant, key)}}, ConsistentRead=True
    ).get("Item")
    return item


def begin(gate: IdempotencyGate, ids: Callable[[], int], body: object = BODY, merchant: str = MERCHANT,
          key: str = KEY) -> Decision:
    return gate.begin(merchant, key, fingerprint(body), ids)


def test_record_key_is_sha256_of_merchant_nul_key() -> None:
    assert record_key("m", "k") == hashlib.sha256(b"m\x00k").hexdigest()
    assert record_key("ab", "c") != record_key("a", "bc")


def test_fingerprint_is_canonical_json() -> None:
    assert fingerprint({"b": 1, "a": [1, 2]}) == fingerprint({"a": [1, 2], "b": 1})
    assert fingerprint({"a": 1}) == hashlib.sha256(b'{"a":1}').hexdigest()
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})


def test_a_new_key_starts_and_holds_the_payment_id(gate: IdempotencyGate, ddb: Any,
                                                   dynamo_settings: Settings) -> None:
    decision = begin(gate, PaymentIds())
    assert isinstance(decision, Started) and decision.payment_id == 1
    item = stored(ddb, dynamo_settings)
    assert item is not None
    assert item["status"]["S"] == IN_PROGRESS
    assert item["payment_id"]["N"] == "1"
    assert item["token"]["S"] == decision.token
    assert item["fingerprint"]["S"] == fingerprint(BODY)
    assert int(item["in_progress_expires_ms"]["N"]) == T0_MS + IN_PROGRESS_TTL_MS
    assert int(item["expires_at"]["N"]) == T0_MS // 1000 + RECORD_TTL_S


def test_same_key_while_in_flight_is_in_flight(gate: IdempotencyGate, clock: SteppedClock) -> None:
    ids = PaymentIds()
    first = begin(gate, ids)
    clock.now_ms += IN_PROGRESS_TTL_MS  # the expiry's own millisecond still belongs to the holder
    second = begin(gate, ids)
    assert isinstance(first, Started)
    assert second == InFlight(payment_id=first.payment_id)


def test_a_different_payload_is_a_mismatch_and_writes_nothing(gate: IdempotencyGate, ddb: Any,
                                                              dynamo_settings: Settings) -> None:
    ids = PaymentIds()
    first = begin(gate, ids)
    before = stored(ddb, dynamo_settings)
    assert begin(gate, ids, body={**BODY, "amount_minor": 2000}) == Mismatch()
    assert stored(ddb, dynamo_settings) == before
    assert isinstance(first, Started)
    gate.complete(MERCHANT, KEY, first.token, RESPONSE)
    completed = stored(ddb, dynamo_settings)
    assert begin(gate, ids, body={**BODY, "currency": "USD"}) == Mismatch()
    assert stored(ddb, dynamo_settings) == completed


def test_a_completed_key_replays_the_response_byte_for_byte(gate: IdempotencyGate, ddb: Any,
                                                            dynamo_settings: Settings,
                                                            clock: SteppedClock) -> None:
    ids = PaymentIds()
    first = begin(gate, ids)
    assert isinstance(first, Started)
    clock.now_ms += 300
    gate.complete(MERCHANT, KEY, first.token, RESPONSE)
    item = stored(ddb, dynamo_settings)
    assert item is not None and item["status"]["S"] == COMPLETED
    assert "in_progress_expires_ms" not in item
    assert int(item["expires_at"]["N"]) == (T0_MS + 300) // 1000 + RECORD_TTL_S
    clock.now_ms += 10 * IN_PROGRESS_TTL_MS  # long after: a completed record never becomes resumable
    replay = begin(gate, ids)
    assert replay == Replay(payment_id=first.payment_id, response=RESPONSE)
    assert isinstance(replay, Replay) and replay.response.body == RESPONSE.body


def test_an_empty_body_replays_as_empty(gate: IdempotencyGate) -> None:
    ids = PaymentIds()
    first = begin(gate, ids)
    assert isinstance(first, Started)
    empty = StoredResponse(status_code=204, headers=(), body=b"")
    gate.complete(MERCHANT, KEY, first.token, empty)
    assert begin(gate, ids) == Replay(payment_id=first.payment_id, response=empty)


def test_fifty_threads_racing_on_one_key_start_exactly_once(gate: IdempotencyGate) -> None:
    ids = PaymentIds()
    threads = 50
    barrier = threading.Barrier(threads)
    decisions: list[Decision] = []
    lock = threading.Lock()

    def race() -> None:
        barrier.wait(30)
        decision = begin(gate, ids)
        with lock:
            decisions.append(decision)

    workers = [threading.Thread(target=race) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert Counter(type(decision).__name__ for decision in decisions) == {"Started": 1, "InFlight": threads - 1}
    started = next(decision for decision in decisions if isinstance(decision, Started))
    assert {decision.payment_id for decision in decisions if isinstance(decision, InFlight)} == {started.payment_id}


def test_different_merchants_with_the_same_key_are_independent(gate: IdempotencyGate) -> None:
    ids = PaymentIds()
    a = begin(gate, ids, merchant="merchant-a")
    b = begin(gate, ids, merchant="merchant-b", body={"other": "payload"})
    assert isinstance(a, Started) and isinstance(b, Started)
    assert a.payment_id != b.payment_id
    gate.complete("merchant-a", KEY, a.token, RESPONSE)
    assert isinstance(begin(gate, ids, merchant="merchant-b", body={"other": "payload"}), InFlight)


def test_a_crashed_holder_is_resumed_with_the_same_payment_id_only_after_expiry(
    gate: IdempotencyGate, clock: SteppedClock
) -> None:
    ids = PaymentIds()
    crashed = begin(gate, ids)
    assert isinstance(crashed, Started)
    clock.now_ms = T0_MS + IN_PROGRESS_TTL_MS
    assert begin(gate, ids) == InFlight(payment_id=crashed.payment_id)
    clock.now_ms += 1
    resumed = begin(gate, ids)
    assert isinstance(resumed, Resumed)
    assert resumed.payment_id == crashed.payment_id
    assert resumed.token != crashed.token
    assert begin(gate, ids) == InFlight(payment_id=crashed.payment_id)  # the resumer holds it now
    gate.complete(MERCHANT, KEY, resumed.token, RESPONSE)
    assert begin(gate, ids) == Replay(payment_id=crashed.payment_id, response=RESPONSE)


def test_two_concurrent_resumers_one_wins(gate: IdempotencyGate, clock: SteppedClock) -> None:
    ids = PaymentIds()
    crashed = begin(gate, ids)
    assert isinstance(crashed, Started)
    clock.now_ms += IN_PROGRESS_TTL_MS + 1
    threads = 10
    barrier = threading.Barrier(threads)
    decisions: list[Decision] = []
    lock = threading.Lock()

    def resume() -> None:
        barrier.wait(30)
        decision = begin(gate, ids)
        with lock:
            decisions.append(decision)

    workers = [threading.Thread(target=resume) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert Counter(type(decision).__name__ for decision in decisions) == {"Resumed": 1, "InFlight": threads - 1}
    assert {decision.payment_id for decision in decisions if isinstance(decision, Resumed | InFlight)} == {
        crashed.payment_id
    }


def test_a_resumer_that_lost_the_race_sees_in_flight(gate: IdempotencyGate, dynamo_settings: Settings,
                                                      ddb: Any, clock: SteppedClock) -> None:
    """Deterministic interleaving: B reads the dead record, A resumes first, then B's take-over must fail."""
    ids = PaymentIds()
    crashed = begin(gate, ids)
    assert isinstance(crashed, Started)
    clock.now_ms += IN_PROGRESS_TTL_MS + 1
    dead = stored(ddb, dynamo_settings)
    assert dead is not None

    class ReadsStaleFirst:
        """Hands B's first put the dead record as if read before A's take-over landed."""

        def __init__(self) -> None:
            self.first = True

        def __getattr__(self, name: str) -> Any:
            return getattr(ddb, name)

        def put_item(self, **kwargs: Any) -> Any:
            if self.first:
                self.first = False
                a = begin(gate, ids)  # A resumes in between
                assert isinstance(a, Resumed)
                raise ClientError(
                    {"Error": {"Code": "ConditionalCheckFailedException"}, "Item": dead},  # type: ignore[typeddict-unknown-key]
                    "PutItem",
                )
            return ddb.put_item(**kwargs)

    b_gate = IdempotencyGate(ReadsStaleFirst(), dynamo_settings.idempotency_table,
                             in_progress_ttl_ms=IN_PROGRESS_TTL_MS, clock_ms=clock)
    assert b_gate.begin(MERCHANT, KEY, fingerprint(BODY), ids) == InFlight(payment_id=crashed.payment_id)


def test_complete_by_a_stale_holder_is_refused(gate: IdempotencyGate, clock: SteppedClock) -> None:
    ids = PaymentIds()
    stale = begin(gate, ids)
    assert isinstance(stale, Started)
    clock.now_ms += IN_PROGRESS_TTL_MS + 1
    resumed = begin(gate, ids)
    assert isinstance(resumed, Resumed)
    late = StoredResponse(status_code=500, headers=(), body=b"late")
    with pytest.raises(NotHolderError):
        gate.complete(MERCHANT, KEY, stale.token, late)
    assert gate.abandon(MERCHANT, KEY, stale.token) is False
    gate.complete(MERCHANT, KEY, resumed.token, RESPONSE)
    with pytest.raises(NotHolderError):  # completing twice is refused too: the record is no longer in progress
        gate.complete(MERCHANT, KEY, resumed.token, late)
    assert begin(gate, ids) == Replay(payment_id=stale.payment_id, response=RESPONSE)


def test_a_late_holder_may_still_complete_if_nobody_took_over(gate: IdempotencyGate, clock: SteppedClock) -> None:
    ids = PaymentIds()
    slow = begin(gate, ids)
    assert isinstance(slow, Started)
    clock.now_ms += IN_PROGRESS_TTL_MS * 3
    gate.complete(MERCHANT, KEY, slow.token, RESPONSE)
    assert begin(gate, ids) == Replay(payment_id=slow.payment_id, response=RESPONSE)


def test_abandon_frees_the_key_for_a_fresh_start(gate: IdempotencyGate, ddb: Any,
                                                 dynamo_settings: Settings) -> None:
    ids = PaymentIds()
    first = begin(gate, ids)
    assert isinstance(first, Started)
    assert gate.abandon(MERCHANT, KEY, first.token) is True
    assert stored(ddb, dynamo_settings) is None
    again = begin(gate, ids)
    assert isinstance(again, Started) and again.payment_id != first.payment_id


def test_a_record_past_its_ttl_but_not_yet_deleted_is_absent(gate: IdempotencyGate, clock: SteppedClock,
                                                             ddb: Any, dynamo_settings: Settings) -> None:
    ids = PaymentIds()
    first = begin(gate, ids)
    assert isinstance(first, Started)
    gate.complete(MERCHANT, KEY, first.token, RESPONSE)
    clock.now_ms += RECORD_TTL_S * 1000 - 1000
    assert isinstance(begin(gate, ids), Replay)  # still inside the 24 h
    clock.now_ms += 2000
    assert stored(ddb, dynamo_settings) is not None  # DynamoDB has not deleted it (TTL is lazy)
    later = begin(gate, ids, body={"a": "new payload is fine once the key expired"})
    assert isinstance(later, Started) and later.payment_id != first.payment_id


def test_a_merchant_id_with_the_separator_is_refused(gate: IdempotencyGate) -> None:
    # "m\0" + NUL + "k" would equal "m" + NUL + "\0k": merchants could collide.
    with pytest.raises(ValueError, match="NUL"):
        begin(gate, PaymentIds(), merchant="m\x00")


@pytest.mark.parametrize("key", ["", "k" * 256])
def test_missing_or_oversized_keys_are_rejected(gate: IdempotencyGate, key: str) -> None:
    with pytest.raises(InvalidIdempotencyKeyError):
        begin(gate, PaymentIds(), key=key)


def test_a_dead_holders_key_with_a_different_payload_is_a_mismatch_not_a_take_over(
    gate: IdempotencyGate, clock: SteppedClock, ddb: Any, dynamo_settings: Settings
) -> None:
    ids = PaymentIds()
    assert isinstance(begin(gate, ids), Started)
    clock.now_ms += IN_PROGRESS_TTL_MS + 1
    before = stored(ddb, dynamo_settings)
    assert begin(gate, ids, body={**BODY, "amount_minor": 1}) == Mismatch()
    assert stored(ddb, dynamo_settings) == before


def test_release_lets_the_next_request_resume_at_once_with_the_same_payment_id(
    gate: IdempotencyGate, ddb: Any, dynamo_settings: Settings
) -> None:
    ids = PaymentIds()
    first = begin(gate, ids)
    assert isinstance(first, Started)
    assert gate.release(MERCHANT, KEY, "not-the-holder") is False
    assert isinstance(begin(gate, ids), InFlight)
    assert gate.release(MERCHANT, KEY, first.token) is True
    item = stored(ddb, dynamo_settings)
    assert item is not None and item["status"]["S"] == IN_PROGRESS and item["payment_id"]["N"] == "1"
    retry = begin(gate, ids)  # same clock reading: no wait for the in-progress expiry
    assert isinstance(retry, Resumed) and retry.payment_id == first.payment_id
    with pytest.raises(NotHolderError):
        gate.complete(MERCHANT, KEY, first.token, RESPONSE)
    assert gate.release(MERCHANT, KEY, first.token) is False
    gate.complete(MERCHANT, KEY, retry.token, RESPONSE)
    assert begin(gate, ids) == Replay(payment_id=first.payment_id, response=RESPONSE)
