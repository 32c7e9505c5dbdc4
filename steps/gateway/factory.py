"""``gateway_for``: the adapter of a gateway, made from the settings."""

from __future__ import annotations

from core.settings import Settings
from steps.gateway.credentials import with_gateway_secrets
from steps.gateway.notices import NoticeReader
from steps.gateway.port import Gateway, GatewayNotConfigured
from steps.gateway.sandbox import DEFAULT_TIMEOUT_MS, SandboxGateway


def _missing(name: str, *variables: str) -> GatewayNotConfigured:
    return GatewayNotConfigured(f"gateway {name!r} is not configured: set {' and '.join(variables)}")


def gateway_for(name: str, settings: Settings, *, timeout_ms: int = DEFAULT_TIMEOUT_MS,
                notices: NoticeReader | None = None) -> Gateway:
    """The adapter for ``name`` (sandbox, stripe, adyen: a payment's recorded gateway). ``notices`` reads the
    webhook notices stored for a payment id: the Adyen adapter's only way to learn an asynchronous outcome."""
    settings = with_gateway_secrets(settings)
    if name == "sandbox":
        if not settings.sandbox_gateway_url:
            raise _missing(name, "SANDBOX_GATEWAY_URL")
        return SandboxGateway(base_url=settings.sandbox_gateway_url, timeout_ms=timeout_ms)
    # Each SDK is imported when its gateway is first asked for: a process never loads one it does not use.
    if name == "stripe":
        from steps.gateway.stripe import StripeGateway  # noqa: PLC0415

        if settings.stripe_api_key is None:
            raise _missing(name, "STRIPE_API_KEY")
        secret = settings.stripe_webhook_secret
        return StripeGateway(api_key=settings.stripe_api_key.get_secret_value(), api_base=settings.stripe_api_base,
                             timeout_ms=timeout_ms, webhook_secret=secret.get_secret_value() if secret else None)
    if name == "adyen":
        from steps.gateway.adyen import AdyenGateway  # noqa: PLC0415

        if settings.adyen_api_key is None or not settings.adyen_merchant_account or not settings.adyen_checkout_url:
            raise _missing(name, "ADYEN_API_KEY", "ADYEN_MERCHANT_ACCOUNT", "ADYEN_CHECKOUT_URL")
        if notices is None:
            raise GatewayNotConfigured("gateway 'adyen' needs the stored webhook notices to learn outcomes")
        hmac_key = settings.adyen_hmac_key
        return AdyenGateway(api_key=settings.adyen_api_key.get_secret_value(),
                            merchant_account=settings.adyen_merchant_account,
                            checkout_url=settings.adyen_checkout_url, timeout_ms=timeout_ms,
                            hmac_key=hmac_key.get_secret_value() if hmac_key else None, notices=notices)
    raise GatewayNotConfigured(f"unknown gateway {name!r}: expected sandbox, stripe or adyen")
