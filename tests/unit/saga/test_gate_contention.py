"""A gate whose record keeps changing under it (GateContentionError) is a request in flight (409), not a 500. Not
reachable on purpose through HTTP, so the use case is given a gate that raises it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from core.settings import Settings
from saga import idempotency
from saga.api.answers import payment_answer
from saga.api.request import parse_body
from saga.bootstrap import Services
from saga.start import KeyInFlight, start_payment
from steps.gateway.port import Gateway
from store.merchants import Merchant


class ContendedGate:
    def begin(self, *_: Any, **__: Any) -> idempotency.Decision:
        raise idempotency.GateContentionError("the record kept changing")


class NoIds:
    def next_id(self) -> int:
        raise AssertionError("no id is minted for a contended key")

    def close(self) -> None:
        pass


def _no_gateway(name: str) -> Gateway:
    raise AssertionError(f"a refused start asks no gateway ({name})")


def test_gate_contention_is_a_request_in_flight() -> None:
    merchant = Merchant(id="mer_x", name="Shop", api_key_sha256=b"", api_key_prefix="psk_", max_amount_minor=10,
                        currencies=["EUR"], webhook_url=None, gateway="sandbox",
                        expiring_authorization_action="cancel", created_at=datetime.now(UTC),
                        key_rotated_at=None)
    request, fingerprint = parse_body('{"amount_minor": 5, "currency": "EUR", "payment_method_token": "t",'
                                      ' "customer_reference": "c", "order_reference": "o"}')
    services = Services(settings=Settings.model_construct(), engine=None, gate=ContendedGate(),  # type: ignore[arg-type]
                        ids=NoIds(), sfn=None, state_machine_arn="", gateways=_no_gateway)  # type: ignore[arg-type]
    with pytest.raises(KeyInFlight):
        start_payment(services, merchant=merchant, key="k", request=request, fingerprint=fingerprint,
                      render=payment_answer)
