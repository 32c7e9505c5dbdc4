"""A saga that outlives the start's answer budget (API Gateway cuts a client off at 29 s; a saga may run 290 s): the
start answers 202 with the payment as it stands and a Location to poll, stores nothing for the key, and the saga runs
on to its end, which the key's retry then answers byte for byte."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from ulid import ULID

from core.settings import settings
from local.http.apigateway import new_context, to_event
from local.saga_runtime import local_services
from local.testing.live import LiveStack
from saga import idempotency
from saga.api.request import parse_body
from saga.bootstrap import Services
from saga.handler import make_handler
from store import lifecycle
from tests.e2e.api.support import wait_until
from tests.e2e.saga_support import payment_row

SLOW_MS = 1_500  # each slow gateway call (authorize, capture): the saga takes at least twice this
BUDGET_MS = 300


@pytest.fixture
def slow_gateway(live: LiveStack) -> Iterator[None]:
    live.configure_gateway(slow_ms=SLOW_MS)
    yield
    live.configure_gateway(slow_ms=200)


@pytest.fixture
def services(live: LiveStack, step_env: None) -> Iterator[Services]:
    made = local_services(settings().model_copy(update={"start_answer_budget_ms": BUDGET_MS}))
    yield made
    made.close()


def _headers(result: dict[str, Any]) -> dict[str, str]:
    """The proxy result's headers (the REST resolver answers them as multiValueHeaders)."""
    return {name: values[-1] for name, values in (result.get("multiValueHeaders") or {}).items()}


def _post(services: Services, api_key: str, key: str, body: dict[str, Any]) -> dict[str, Any]:
    event = to_event(method="POST", path="/v1/payments", query=[], body=json.dumps(body).encode(),
                     headers=[("Authorization", f"Bearer {api_key}"), ("Idempotency-Key", key),
                              ("Content-Type", "application/json")], source_ip="127.0.0.1")
    return make_handler(services)(event, new_context("paysaga-start"))


def test_a_saga_past_the_budget_answers_202_then_its_retry_answers_the_end(
        live: LiveStack, services: Services, slow_gateway: None) -> None:
    _, api_key = live.new_merchant()
    key = str(ULID())
    body = {"amount_minor": 3100, "currency": "EUR", "payment_method_token": "tok_slow",
            "customer_reference": f"cus_{ULID()}", "order_reference": f"ord_{ULID()}"}

    began = time.monotonic()
    first = _post(services, api_key, key, body)
    answered_s = time.monotonic() - began
    payment = json.loads(first["body"])
    assert first["statusCode"] == 202, first
    assert answered_s < SLOW_MS / 1_000, f"answered after {answered_s:.2f} s, past the budget of {BUDGET_MS} ms"
    assert payment["status"] not in {str(s) for s in lifecycle.FINAL}, payment
    assert _headers(first)["Location"] == f"/v1/payments/{payment['id']}"
    assert int(_headers(first)["Retry-After"]) >= 1
    assert "Idempotent-Replayed" not in _headers(first)

    # The saga runs on: the payment ends succeeded without another request.
    wait_until(lambda: payment_row(live, payment["id"])["status"] == "succeeded", timeout_s=30,
               what="the saga answered 202 to end")

    # The finished saga stored its answer for the key (it may still be storing it: the retry answers 409 until then).
    retry = wait_until(lambda: (r := _post(services, api_key, key, body))["statusCode"] != 409 and r,
                       timeout_s=30, what="the retry to get the stored answer")
    assert retry["statusCode"] == 201, retry
    assert _headers(retry).get("Idempotent-Replayed") == "true"
    assert json.loads(retry["body"])["id"] == payment["id"]
    assert json.loads(retry["body"])["status"] == "succeeded"


def test_a_saga_within_the_budget_answers_its_end(live: LiveStack, services: Services) -> None:
    _, api_key = live.new_merchant()
    body = {"amount_minor": 3200, "currency": "EUR", "payment_method_token": "tok_approve",
            "customer_reference": f"cus_{ULID()}", "order_reference": f"ord_{ULID()}"}
    services_with_room = local_services(services.settings.model_copy(update={"start_answer_budget_ms": 20_000}))
    try:
        answer = _post(services_with_room, api_key, str(ULID()), body)
    finally:
        services_with_room.close()
    assert answer["statusCode"] == 201, answer
    assert "Location" not in _headers(answer)


def test_a_retry_while_the_key_is_held_answers_the_payments_end_once_it_has_one(live: LiveStack,
                                                                                 step_env: None) -> None:
    """The holder answered 202 and was frozen (Lambda) before storing the final answer: a retry with the key gets the
    payment's final answer instead of 409 until the key's in-progress expiry."""
    services = local_services(settings())  # the default budget: this saga ends well within it
    merchant_id, api_key = live.new_merchant()
    body = {"amount_minor": 3300, "currency": "EUR", "payment_method_token": "tok_approve",
            "customer_reference": f"cus_{ULID()}", "order_reference": f"ord_{ULID()}"}
    done = _post(services, api_key, str(ULID()), body)
    assert done["statusCode"] == 201, done
    payment_id = int(json.loads(done["body"])["id"])

    # A key whose holder never stored its answer, for that payment (as a frozen 202 holder leaves it).
    held_key = str(ULID())
    _, fingerprint = parse_body(json.dumps(body))
    decision = services.gate.begin(merchant_id, held_key, fingerprint, new_payment_id=lambda: payment_id)
    assert isinstance(decision, idempotency.Started), decision

    retry = _post(services, api_key, held_key, body)
    services.close()
    assert retry["statusCode"] == 201, retry
    assert retry["body"] == done["body"] and _headers(retry).get("Idempotent-Replayed") == "true"
