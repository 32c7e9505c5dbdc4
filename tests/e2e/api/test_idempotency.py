"""The idempotency gate through real HTTP (DESIGN 4, properties 7-9): replay byte for byte (also after a restart of
the server), 409 in flight, 422 on a different body with no side effect, 50 concurrent requests with one key, and a
holder killed mid-flight whose key is resumed with the same payment id after the in-progress expiry."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from ulid import ULID

from local.testing.live import TEST_ENV, LiveStack
from tests.e2e.api.support import body, error_of, executions_of, merchant_payments, post, wait_until
from tests.e2e.saga_support import authorizations, captures

IN_PROGRESS_TTL_S = int(TEST_ENV["IDEMPOTENCY_IN_PROGRESS_TTL_MS"]) / 1000
# Below GATEWAY_TIMEOUT_MS (1000): each gateway call is slow but answered, so the saga stays in flight ~2 s and
# then succeeds, without the timeout/lookup path getting in the way of what these tests watch.
SLOW_GATEWAY_MS = 900


@pytest.fixture
def slow_gateway(live: LiveStack) -> Iterator[None]:
    live.configure_gateway(latency_ms=SLOW_GATEWAY_MS)
    try:
        yield
    finally:
        live.configure_gateway(latency_ms=0)


def _in_background(live: LiveStack, api_key: str, key: str, sent: dict[str, object]) -> tuple[
        threading.Thread, list[httpx.Response | BaseException]]:
    outcome: list[httpx.Response | BaseException] = []

    def send() -> None:
        try:
            outcome.append(post(live, api_key, key=key, json_body=sent))
        except BaseException as error:  # reported by the test thread
            outcome.append(error)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread, outcome


def test_completed_key_replays_stored_response_byte_for_byte_also_after_restart(live: LiveStack) -> None:
    merchant_id, api_key = live.new_merchant()
    key, sent = str(ULID()), body()
    first = post(live, api_key, key=key, json_body=sent)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers

    replay = post(live, api_key, key=key, json_body=sent)
    assert replay.status_code == first.status_code and replay.content == first.content
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.headers["content-type"] == first.headers["content-type"]

    # The same body with its keys in another order and other spacing is the same request.
    reordered = json.dumps(dict(reversed(list(sent.items()))), indent=2).encode()
    again = post(live, api_key, key=key, content=reordered)
    assert again.status_code == 201 and again.content == first.content, again.text

    live.restart_api()
    after_restart = post(live, api_key, key=key, json_body=sent)
    assert after_restart.status_code == first.status_code and after_restart.content == first.content
    assert after_restart.headers["idempotent-replayed"] == "true"

    payment_id = first.json()["id"]
    assert [row["id"] for row in merchant_payments(live, merchant_id)] == [int(payment_id)]
    assert executions_of(live, int(payment_id)) == 1
    calls = live.gateway_calls(payment_id)
    assert authorizations(calls) == 1 and captures(calls) == 1


def test_declined_outcome_is_replayed_too(live: LiveStack) -> None:
    merchant_id, api_key = live.new_merchant()
    key, sent = str(ULID()), body(payment_method_token="tok_decline")
    first = post(live, api_key, key=key, json_body=sent)
    assert first.status_code == 402, first.text
    replay = post(live, api_key, key=key, json_body=sent)
    assert (replay.status_code, replay.content) == (402, first.content)
    assert replay.headers["idempotent-replayed"] == "true"
    assert len(merchant_payments(live, merchant_id)) == 1


def test_same_key_of_another_merchant_is_another_payment(live: LiveStack) -> None:
    _, api_key = live.new_merchant()
    _, other_key = live.new_merchant()
    key, sent = str(ULID()), body()
    mine = post(live, api_key, key=key, json_body=sent)
    theirs = post(live, other_key, key=key, json_body=sent)
    assert mine.status_code == theirs.status_code == 201, theirs.text
    assert "idempotent-replayed" not in theirs.headers and mine.json()["id"] != theirs.json()["id"]


def test_422_same_key_different_body_has_no_side_effect(live: LiveStack) -> None:
    merchant_id, api_key = live.new_merchant()
    key, sent = str(ULID()), body()
    first = post(live, api_key, key=key, json_body=sent)
    assert first.status_code == 201, first.text
    payment_id = first.json()["id"]
    calls_before = live.gateway_calls(payment_id)

    for changed in (body(), {**sent, "amount_minor": 2000}, {**sent, "metadata": {}},
                    {**sent, "payment_method_token": "tok_decline"}):
        response = post(live, api_key, key=key, json_body=changed)
        assert response.status_code == 422, response.text
        assert error_of(response)["type"] == "IdempotencyKeyReused"
        assert error_of(response)["field"] == "Idempotency-Key"
        assert "idempotent-replayed" not in response.headers

    assert [row["id"] for row in merchant_payments(live, merchant_id)] == [int(payment_id)]
    assert executions_of(live, int(payment_id)) == 1
    assert live.gateway_calls(payment_id) == calls_before
    # The key still replays its first outcome afterwards.
    assert post(live, api_key, key=key, json_body=sent).content == first.content


@pytest.mark.usefixtures("slow_gateway")
def test_409_while_the_same_key_is_in_flight_then_the_outcome_replays(live: LiveStack) -> None:
    merchant_id, api_key = live.new_merchant()
    key, sent = str(ULID()), body()
    thread, outcome = _in_background(live, api_key, key, sent)
    wait_until(lambda: merchant_payments(live, merchant_id), timeout_s=20, what="the first request's payment row")

    in_flight = post(live, api_key, key=key, json_body=sent)
    assert in_flight.status_code == 409, in_flight.text
    assert error_of(in_flight)["type"] == "RequestInFlight" and error_of(in_flight)["field"] == "Idempotency-Key"
    assert int(in_flight.headers["retry-after"]) >= 1
    different = post(live, api_key, key=key, json_body=body())
    assert different.status_code == 422, different.text

    thread.join(timeout=60)
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.Response), outcome
    first = outcome[0]
    assert first.status_code == 201, first.text
    replay = post(live, api_key, key=key, json_body=sent)
    assert (replay.status_code, replay.content) == (201, first.content)
    assert len(merchant_payments(live, merchant_id)) == 1


def test_50_concurrent_requests_with_one_key_run_one_saga(live: LiveStack) -> None:
    merchant_id, api_key = live.new_merchant()
    key, sent = str(ULID()), body()
    start = threading.Barrier(50)

    def send(_: int) -> httpx.Response:
        start.wait(timeout=30)
        return post(live, api_key, key=key, json_body=sent)

    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(send, range(50)))

    originals = [r for r in responses if r.status_code == 201 and "idempotent-replayed" not in r.headers]
    assert len(originals) == 1, [(r.status_code, r.text) for r in responses]
    original = originals[0]
    for response in responses:
        if response is original:
            continue
        assert response.status_code in (409, 201), response.text
        if response.status_code == 201:
            assert response.content == original.content and response.headers["idempotent-replayed"] == "true"
        else:
            assert error_of(response)["type"] == "RequestInFlight"

    payment_id = original.json()["id"]
    assert [row["id"] for row in merchant_payments(live, merchant_id)] == [int(payment_id)]
    assert executions_of(live, int(payment_id)) == 1
    calls = live.gateway_calls(payment_id)
    assert authorizations(calls) == 1 and captures(calls) == 1


@pytest.mark.usefixtures("slow_gateway")
def test_killed_holder_is_409_until_expiry_then_resumed_with_the_same_payment(live: LiveStack) -> None:
    merchant_id, api_key = live.new_merchant()
    key, sent = str(ULID()), body()
    thread, outcome = _in_background(live, api_key, key, sent)
    rows = wait_until(lambda: merchant_payments(live, merchant_id), timeout_s=20, what="the holder's payment row")
    payment_id = rows[0]["id"]
    held_from = time.monotonic()  # the key was taken just before the row was written

    os.kill(live.api_pid(), signal.SIGKILL)
    thread.join(timeout=30)
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.TransportError), outcome
    live.restart_api()
    live.configure_gateway(latency_ms=0)

    before_expiry = post(live, api_key, key=key, json_body=sent)
    assert time.monotonic() - held_from < IN_PROGRESS_TTL_S, "the restart took longer than the in-progress expiry"
    assert before_expiry.status_code == 409, before_expiry.text

    def retried() -> httpx.Response | None:
        response = post(live, api_key, key=key, json_body=sent)
        return None if response.status_code == 409 else response

    resumed: httpx.Response = wait_until(retried, timeout_s=IN_PROGRESS_TTL_S + 30, what="the key's expiry")
    assert time.monotonic() - held_from >= IN_PROGRESS_TTL_S - 1.0, "taken over before the in-progress expiry"
    assert resumed.status_code == 201, resumed.text
    assert resumed.json()["id"] == str(payment_id) and resumed.json()["status"] == "succeeded"
    assert [row["id"] for row in merchant_payments(live, merchant_id)] == [payment_id]
    calls = live.gateway_calls(str(payment_id))
    assert authorizations(calls) == 1 and captures(calls) == 1
    replay = post(live, api_key, key=key, json_body=sent)
    assert (replay.status_code, replay.content) == (201, resumed.content)
