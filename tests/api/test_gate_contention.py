"""A gate whose record keeps changing under it (GateContentionError) is answered 409, not 500. Not reachable on
purpose through HTTP, so run_payment is called with a gate that raises it."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from core.settings import Settings
from ledger.merchants import Merchant
from saga import idempotency
from saga.api.errors import ApiError
from saga.api.request import parse_body
from saga.start import run_payment


class ContendedGate:
    def begin(self, *_: Any, **__: Any) -> idempotency.Decision:
        raise idempotency.GateContentionError("the record kept changing")


def test_gate_contention_is_409_with_retry_after() -> None:
    merchant = Merchant(id="mer_x", name="Shop", api_key_sha256=b"", api_key_prefix="psk_", max_amount_minor=10,
                        currencies=["EUR"], webhook_url=None, created_at=datetime.now(UTC), key_rotated_at=None)
    request, fingerprint = parse_body('{"amount_minor": 5, "currency": "EUR", "payment_method_token": "t",'
                                      ' "customer_reference": "c", "order_reference": "o"}')
    with pytest.raises(ApiError) as raised:
        run_payment(settings=Settings.model_construct(), gate=ContendedGate(),  # type: ignore[arg-type]
                    ids=SimpleNamespace(next_id=lambda: 1),
                    merchant=merchant, key="k", request=request, fingerprint=fingerprint)
    assert raised.value.status == 409 and raised.value.error == "RequestInFlight"
    assert raised.value.headers == {"Retry-After": "2"}
