"""The port's pure parts: idempotency keys, money checks, the factory."""

from __future__ import annotations

import pytest

from core.settings import Settings
from steps.gateway import Gateway, GatewayNotConfigured, Operation, SandboxGateway, gateway_for, idempotency_key
from steps.gateway.port import check_money


def test_idempotency_keys_are_derived_from_the_payment_id() -> None:
    assert [idempotency_key(op, "123") for op in Operation] == ["123", "123:capture", "123:void", "123:refund"]


@pytest.mark.parametrize("payment_id", ["", "a:b"])
def test_payment_ids_that_would_make_keys_ambiguous_are_refused(payment_id: str) -> None:
    with pytest.raises(ValueError, match="payment_id"):
        idempotency_key(Operation.CAPTURE, payment_id)


@pytest.mark.parametrize(("amount", "currency"), [(0, "EUR"), (-5, "EUR"), (1.5, "EUR"), (True, "EUR"), (5, "eur")])
def test_money_the_gateway_must_never_see(amount: object, currency: str) -> None:
    with pytest.raises(ValueError):
        check_money(amount, currency)  # type: ignore[arg-type]


def test_adapter_refuses_a_float_amount_before_sending() -> None:
    with SandboxGateway(base_url="http://127.0.0.1:9") as gateway, pytest.raises(ValueError):
        gateway.capture(payment_id="p", gateway_reference="sbx_pay_x", amount_minor=10.0, currency="EUR")  # type: ignore[arg-type]


# Whatever the process environment holds (an earlier test's stack), these settings name no gateway but those given.
_NO_GATEWAYS: dict[str, str | None] = dict.fromkeys((
    "SANDBOX_GATEWAY_URL", "STRIPE_API_KEY", "STRIPE_API_BASE", "STRIPE_WEBHOOK_SECRET", "ADYEN_API_KEY",
    "ADYEN_MERCHANT_ACCOUNT", "ADYEN_CHECKOUT_URL", "ADYEN_HMAC_KEY", "GATEWAY_SECRETS_ARN"))


def _settings(**env: str) -> Settings:
    values = {"DATABASE_URL": "postgresql://x@localhost/x", "REDIS_URL": "redis://localhost", **_NO_GATEWAYS, **env}
    return Settings(**values)  # type: ignore[arg-type]


def test_factory_builds_the_sandbox_adapter() -> None:
    gateway = gateway_for("sandbox", _settings(SANDBOX_GATEWAY_URL="http://127.0.0.1:1"))
    try:
        assert isinstance(gateway, SandboxGateway)
        assert isinstance(gateway, Gateway)
        assert gateway.name == "sandbox"
    finally:
        gateway.close()


@pytest.mark.parametrize(
    ("name", "message"),
    [("sandbox", "SANDBOX_GATEWAY_URL"), ("stripe", "not configured"), ("adyen", "not configured"), ("x", "unknown")],
)
def test_factory_says_what_is_missing(name: str, message: str) -> None:
    with pytest.raises(GatewayNotConfigured, match=message):
        gateway_for(name, _settings())
